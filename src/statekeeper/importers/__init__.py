"""The legacy editor's JSON session files: import, validation against the store, export.

`legacy` reads and writes the file format, `store` is what one import transaction does,
and `_async/` (with its generated twin `_sync/`) drives whole files through a manager.
See docs/legacy-migration.md for the migration path and the rules these modules follow.
"""
