"""Moving sessions in and out, keeping the store healthy, and its schema revision."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from sqlalchemy.engine import URL

from statekeeper import migrate, stores
from statekeeper.api.base import AsyncManagerBase, PathLike
from statekeeper.config import resolve_url
from statekeeper.errors import ImportFailed, StateError
from statekeeper.files import read_json, write_json_atomic
from statekeeper.schemas import IntegrityReport, MigrationRecord, SchemaStatus
from statekeeper.services import maintenance, transfer

__all__ = ["AsyncMaintenanceAPI"]


class AsyncMaintenanceAPI(AsyncManagerBase):
    """Export/import of one session, vacuum, optimize, checkpoint, integrity, backup, copy."""

    async def export_session(self, session_id: str, path: PathLike) -> None:
        """Write the session and everything that belongs to it as one JSON document."""
        document = await self._db.run(
            lambda uow: transfer.export_session(uow, session_id), write=False
        )
        await self._db.offload(write_json_atomic, Path(path), document)

    async def import_session(self, path: PathLike) -> str:
        """Import a document written by `export_session`; all of it or nothing. Returns the id."""
        document = await self._db.offload(read_json, Path(path))
        try:
            return await self._db.run(
                lambda uow: transfer.import_session(uow, document), write=True
            )
        except ImportFailed as exc:
            raise ImportFailed(f"{path}: {exc}") from None
        except StateError as exc:
            raise ImportFailed(f"{path}: rejected by the store: {exc}") from exc

    # Maintenance ------------------------------------------------------------------------

    async def vacuum(self) -> None:
        """Reclaim free space (SQLite VACUUM; PostgreSQL VACUUM ANALYZE)."""
        await self._db.run_on_connection(partial(maintenance.run_maintenance, operation="vacuum"))

    async def optimize(self) -> None:
        """Refresh the query planner's statistics."""
        await self._db.run_on_connection(partial(maintenance.run_maintenance, operation="optimize"))

    async def checkpoint(self) -> None:
        """Fold the SQLite WAL into the database file (PostgreSQL: nothing to do)."""
        await self._db.run_on_connection(
            partial(maintenance.run_maintenance, operation="checkpoint")
        )

    async def integrity_check(self) -> IntegrityReport:
        """Check the engine's own consistency and statekeeper's invariants."""
        problems = await self._db.run_on_connection(maintenance.integrity_problems)
        return IntegrityReport(ok=not problems, problems=problems)

    async def backup(self, path: PathLike) -> None:
        """Write a consistent SQLite copy of the store to `path` (replaced atomically)."""
        await self._db.with_sync_engine(lambda engine: stores.backup(engine, Path(path)))

    async def restore_backup(self, path: PathLike, *, overwrite: bool = False) -> int:
        """Replace the store's rows with those of a backup written by `backup` (checked first,
        at any revision this statekeeper knows), in one transaction: all of it or nothing. A
        store that holds rows is replaced only with `overwrite=True`. Returns the rows restored.
        """
        return await self._db.with_sync_engine(
            lambda engine: stores.restore(engine, Path(path), overwrite=overwrite)
        )

    async def tables_with_rows(self) -> list[str]:
        """The statekeeper tables holding at least one row, at whatever revision the store is."""
        return await self._db.run_on_connection(maintenance.occupied_tables)

    async def copy_to(self, url: PathLike | URL) -> int:
        """Copy the whole store into an empty store at `url` (migrated to head first), all of
        it or nothing, e.g. from SQLite to PostgreSQL; returns how many rows were copied."""
        target = resolve_url(url)
        return await self._db.with_sync_engine(lambda engine: stores.copy_store(engine, target))

    # Schema -----------------------------------------------------------------------------

    async def get_migration_history(self) -> list[MigrationRecord]:
        """The schema revisions applied to this database, oldest first ([] when empty)."""
        return await self._db.run_on_connection(migrate.applied_revisions)

    async def schema_status(self) -> SchemaStatus:
        """The database's revision, the newest this statekeeper knows, and whether they match."""
        return await self._db.run_on_connection(migrate.status)

    async def upgrade_schema(self, revision: str = "head") -> SchemaStatus:
        """Upgrade the schema to `revision` in one transaction, under the migration lock."""
        await self._db.run_on_connection(lambda connection: migrate.upgrade(connection, revision))
        return await self.schema_status()

    async def downgrade_schema(self, revision: str) -> SchemaStatus:
        """Downgrade the schema to `revision` ("base" removes every statekeeper table)."""
        await self._db.run_on_connection(lambda connection: migrate.downgrade(connection, revision))
        return await self.schema_status()
