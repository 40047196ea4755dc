# Generated from the _async/ twin by scripts/gen_sync.py: edit that one, then run it.
"""The async source of the API mixins; `_sync/` is generated from it."""
