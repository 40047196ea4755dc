"""The async source of the API mixins; `_sync/` is generated from it."""
