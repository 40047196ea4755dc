"""analytics views: per session, per phase and per UTC day, for ad hoc SQL and notebooks

Flat and the same on both engines, one row per session (`session_stats`), per phase id
(`phase_stats`) and per UTC day of creation (`daily_costs`). The views hold no data;
`statekeeper.analytics` reads them with the models' types, so DataFrames have the same
dtypes on SQLite and PostgreSQL. A later migration that drops or rebuilds sessions,
phase_completions, instances or chat_messages (SQLite batch mode, a PostgreSQL type change)
must drop these views first and create them again after.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SESSION_STATS = """
CREATE VIEW session_stats AS
SELECT
    s.id AS session_id,
    s.subject,
    s.kind,
    s.status,
    s.model,
    s.workspace_id,
    s.created_at,
    s.completed_at,
    s.duration_ms,
    s.cost_usd,
    s.tokens_in,
    s.tokens_out,
    s.error_message,
    s.metadata,
    (SELECT count(*) FROM phase_completions p WHERE p.session_id = s.id) AS phases,
    (SELECT coalesce(sum(p.duration_ms), 0) FROM phase_completions p
        WHERE p.session_id = s.id) AS phase_duration_ms,
    (SELECT p.phase_id FROM phase_completions p WHERE p.session_id = s.id
        ORDER BY p.id DESC LIMIT 1) AS last_phase,
    (SELECT count(*) FROM instances i WHERE i.session_id = s.id) AS instances,
    (SELECT count(*) FROM chat_messages m WHERE m.session_id = s.id) AS chat_messages
FROM sessions s
"""

PHASE_STATS = """
CREATE VIEW phase_stats AS
SELECT
    p.phase_id,
    count(*) AS completions,
    count(DISTINCT p.session_id) AS sessions,
    avg(p.duration_ms) AS avg_duration_ms,
    min(p.duration_ms) AS min_duration_ms,
    max(p.duration_ms) AS max_duration_ms,
    sum(p.cost_usd) AS cost_usd,
    avg(p.cost_usd) AS avg_cost_usd,
    sum(p.tokens_in) AS tokens_in,
    sum(p.tokens_out) AS tokens_out,
    max(p.completed_at) AS last_completed_at
FROM phase_completions p
GROUP BY p.phase_id
"""

# The UTC calendar day: SQLite stores naive UTC text; PostgreSQL a timestamptz.
DAY = {
    "sqlite": "date(s.created_at)",
    "postgresql": "(s.created_at AT TIME ZONE 'UTC')::date",
}

DAILY_COSTS = """
CREATE VIEW daily_costs AS
SELECT
    {day} AS day,
    count(*) AS sessions,
    sum(CASE WHEN s.status = 'completed' THEN 1 ELSE 0 END) AS completed,
    sum(CASE WHEN s.status = 'failed' THEN 1 ELSE 0 END) AS failed,
    sum(s.cost_usd) AS cost_usd,
    sum(s.tokens_in) AS tokens_in,
    sum(s.tokens_out) AS tokens_out
FROM sessions s
GROUP BY {day}
"""

VIEWS = ("daily_costs", "phase_stats", "session_stats")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(SESSION_STATS)
    op.execute(PHASE_STATS)
    op.execute(DAILY_COSTS.format(day=DAY[dialect]))


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
