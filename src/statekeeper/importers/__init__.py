"""The legacy editor's JSON session files: import, validation against the store, export.

See docs/legacy-migration.md for the migration path and the rules these modules follow.
"""

from statekeeper.importers.exporter import export_json
from statekeeper.importers.importer import BATCH_SIZE, Progress, import_json
from statekeeper.importers.validator import validate_import

__all__ = ["BATCH_SIZE", "Progress", "export_json", "import_json", "validate_import"]
