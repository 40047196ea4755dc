"""Adapters for agent frameworks; each submodule needs its framework's extra installed."""
