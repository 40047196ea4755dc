# Generated from the _async/ twin by scripts/gen_sync.py: edit that one, then run it.
"""Driving legacy files through a manager, async source; `_sync/` is generated from it."""
