"""The public operations of StateManager, one mixin per aggregate over a shared Database."""
