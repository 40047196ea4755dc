"""Driving legacy files through a manager, async source; `_sync/` is generated from it."""
