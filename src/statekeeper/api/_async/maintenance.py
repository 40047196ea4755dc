"""Moving sessions in and out, and keeping the store healthy."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from statekeeper.api.base import ManagerBase, PathLike
from statekeeper.config import create_engine, resolve_url
from statekeeper.db import translate_error
from statekeeper.errors import ImportFailed, StateError
from statekeeper.files import read_json, write_json_atomic
from statekeeper.models import MigrationRow
from statekeeper.schemas import IntegrityReport, MigrationRecord
from statekeeper.services import maintenance, transfer

__all__ = ["MaintenanceAPI"]


class MaintenanceAPI(ManagerBase):
    """Export/import of one session, vacuum, optimize, checkpoint, integrity, backup, copy."""

    def export_session(self, session_id: str, path: PathLike) -> None:
        """Write the session and everything that belongs to it as one JSON document."""
        document = self._db.run(lambda db: transfer.export_session(db, session_id), write=False)
        write_json_atomic(Path(path), document)

    def import_session(self, path: PathLike) -> str:
        """Import a document written by `export_session`; all of it or nothing. Returns the id."""
        document = read_json(Path(path))
        try:
            return self._db.run(lambda db: transfer.import_session(db, document), write=True)
        except ImportFailed as exc:
            raise ImportFailed(f"{path}: {exc}") from None
        except StateError as exc:
            raise ImportFailed(f"{path}: rejected by the store: {exc}") from exc

    # Maintenance ------------------------------------------------------------------------

    def vacuum(self) -> None:
        """Reclaim free space (SQLite VACUUM; PostgreSQL VACUUM ANALYZE)."""
        self._maintain("vacuum")

    def optimize(self) -> None:
        """Refresh the query planner's statistics."""
        self._maintain("optimize")

    def checkpoint(self) -> None:
        """Fold the SQLite WAL into the database file (PostgreSQL: nothing to do)."""
        self._maintain("checkpoint")

    def _maintain(self, operation: str) -> None:
        with self._db.connect() as connection:
            maintenance.run_maintenance(connection, operation)

    def integrity_check(self) -> IntegrityReport:
        """Check the engine's own consistency and statekeeper's invariants."""
        with self._db.connect() as connection:
            problems = maintenance.integrity_problems(connection)
        return IntegrityReport(ok=not problems, problems=problems)

    def backup(self, path: PathLike) -> None:
        """Write a consistent SQLite copy of the store to `path` (replaced atomically)."""
        with self._db.connect() as connection:
            maintenance.backup(connection, Path(path))

    def copy_to(self, url: PathLike | URL) -> int:
        """Copy the whole store into an empty store at `url` (migrated to head first), all of
        it or nothing, e.g. from SQLite to PostgreSQL; returns how many rows were copied."""
        target = create_engine(resolve_url(url))
        try:
            with self._db.connect() as connection:
                return maintenance.copy_store(connection, target)
        except sa.exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc
        finally:
            target.dispose()

    def get_migration_history(self) -> list[MigrationRecord]:
        """The schema revisions applied to this database, oldest first."""
        return self._db.run(
            lambda db: [
                MigrationRecord.model_validate(row)
                for row in db.execute(
                    MigrationRow.__table__.select().order_by(MigrationRow.applied_at)
                )
            ],
            write=False,
        )
