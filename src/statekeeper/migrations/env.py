"""Alembic environment for statekeeper: `alembic upgrade head` or in-process migration.

The URL comes from `alembic -x url=...`, else $STATEKEEPER_URL, else the default file;
a PostgreSQL schema from `-x schema=...`, else $STATEKEEPER_SCHEMA.
A connection handed in through config.attributes["connection"] is used as it is (the
library already holds the migration lock on it).
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic import context

from statekeeper.config import Settings, create_engine, resolve_schema, resolve_url
from statekeeper.migrate import create_missing_schema, include_object, migration_lock
from statekeeper.models import Base
from statekeeper.values import utcnow

config = context.config
# Logging as the ini says, when it says anything: a minimal ini (script_location only,
# as for an installed package) has no logging sections, which fileConfig would refuse.
if (
    config.config_file_name is not None
    and config.attributes.get("connection") is None
    and config.file_config.has_section("formatters")
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _record(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
    """Keep schema_migrations in step: when each revision was applied (or forget it)."""
    connection: sa.Connection = ctx.connection
    table = Base.metadata.tables["schema_migrations"]
    if not sa.inspect(connection).has_table(table.name):
        return
    if step.is_upgrade:
        revision = step.up_revision
        connection.execute(
            table.insert().values(
                revision=revision.revision,
                description=revision.doc or "",
                applied_at=utcnow(),
            )
        )
    else:
        for revision_id in step.up_revision_ids:
            connection.execute(table.delete().where(table.c.revision == revision_id))


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
        on_version_apply=_record,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate on the handed-in connection, or open one that holds the migration lock."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    arguments = context.get_x_argument(as_dictionary=True)
    url = resolve_url(arguments.get("url"))
    engine = create_engine(url, Settings(schema=resolve_schema(arguments.get("schema"), url)))
    try:
        with engine.connect() as connection, migration_lock(connection) as locked:
            create_missing_schema(locked)
            _run(locked)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("statekeeper migrations run online only: give a database URL")
run_migrations_online()
