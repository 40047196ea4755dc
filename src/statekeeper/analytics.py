"""DataFrames for notebooks: roll-ups per session, per phase and per day, and the agent
store's agents and snapshots (pandas required).

Each function takes a StateManager (anything with an `engine`), a URL (or SQLite path) or
an Engine and reads the views of migration 0003 (or the agent store's tables) through
SQLAlchemy with the models' types, then fixes the dtypes, so a frame is the same on SQLite
and PostgreSQL: timestamps `datetime64[us, UTC]`, counts and milliseconds `Int64`, money
`float64` rounded to 8 places (exact to the cent), text `string`, flags `boolean`, JSON
decoded to Python objects (zstd-compressed agent states and snapshot payloads included).
`pip install 'statekeeper[analytics]'`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from statekeeper.compression import unpack
from statekeeper.config import create_engine, resolve_url
from statekeeper.models.base import JsonValue, Money, UTCDateTime
from statekeeper.queries import AGENTS, PHASES, SNAPSHOTS
from statekeeper.values import MONEY_PLACES

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "agent_states",
    "daily_costs",
    "phase_durations",
    "phase_stats",
    "plot_cost_per_day",
    "plot_overview",
    "plot_phase_durations",
    "session_stats",
    "snapshots",
]

_TEXT, _INT, _MONEY, _TIME, _JSON, _FLOAT, _DAY, _BOOL = (
    "string",
    "Int64",
    "money",
    "time",
    "json",
    "float64",
    "day",
    "boolean",
)

_SESSION_STATS: Mapping[str, str] = {
    "session_id": _TEXT,
    "subject": _TEXT,
    "kind": _TEXT,
    "status": _TEXT,
    "model": _TEXT,
    "workspace_id": _TEXT,
    "created_at": _TIME,
    "completed_at": _TIME,
    "duration_ms": _INT,
    "cost_usd": _MONEY,
    "tokens_in": _INT,
    "tokens_out": _INT,
    "error_message": _TEXT,
    "metadata": _JSON,
    "phases": _INT,
    "phase_duration_ms": _INT,
    "last_phase": _TEXT,
    "instances": _INT,
    "chat_messages": _INT,
}
_PHASE_STATS: Mapping[str, str] = {
    "phase_id": _TEXT,
    "completions": _INT,
    "sessions": _INT,
    "avg_duration_ms": _FLOAT,
    "min_duration_ms": _INT,
    "max_duration_ms": _INT,
    "cost_usd": _MONEY,
    "avg_cost_usd": _MONEY,
    "tokens_in": _INT,
    "tokens_out": _INT,
    "last_completed_at": _TIME,
}
_DAILY_COSTS: Mapping[str, str] = {
    "day": _DAY,
    "sessions": _INT,
    "completed": _INT,
    "failed": _INT,
    "cost_usd": _MONEY,
    "tokens_in": _INT,
    "tokens_out": _INT,
}
_AGENT_STATES: Mapping[str, str] = {
    "namespace": _TEXT,
    "agent_id": _TEXT,
    "name": _TEXT,
    "status": _TEXT,
    "version": _INT,
    "metadata": _JSON,
    "state_data": _JSON,
    "compressed": _BOOL,
    "created_at": _TIME,
    "updated_at": _TIME,
    "deleted_at": _TIME,
}
_SNAPSHOTS: Mapping[str, str] = {
    "id": _TEXT,
    "session_id": _TEXT,
    "namespace": _TEXT,
    "agent_id": _TEXT,
    "description": _TEXT,
    "created_at": _TIME,
    "expires_at": _TIME,
    "size_bytes": _INT,
    "compressed": _BOOL,
}
_SQL_TYPES: Mapping[str, sa.types.TypeEngine[Any]] = {
    _TIME: UTCDateTime(),
    _MONEY: Money,
    _JSON: JsonValue,
}


def _pandas() -> Any:
    try:
        import pandas as pd
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "statekeeper.analytics needs pandas: pip install 'statekeeper[analytics]'",
            name="pandas",
        ) from None
    return pd


@contextmanager
def _engine(source: Any) -> Iterator[Engine]:
    """The Engine of a manager or an Engine as given, else one opened (and closed) here."""
    engine = getattr(source, "engine", source)
    if isinstance(engine, Engine):
        yield engine
        return
    opened = create_engine(resolve_url(source if isinstance(source, URL) else str(source)))
    try:
        yield opened
    finally:
        opened.dispose()


def _view(name: str, columns: Mapping[str, str]) -> sa.TableClause:
    """A view as a typed table clause, so SQLAlchemy converts its values as the models'."""
    return sa.table(
        name, *(sa.column(column, _SQL_TYPES.get(kind)) for column, kind in columns.items())
    )


def _frame(rows: list[Any], columns: Mapping[str, str]) -> pd.DataFrame:
    """Rows as a DataFrame with the same dtypes whichever engine they came from."""
    pd = _pandas()
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    for column, kind in columns.items():
        values = frame[column]
        if kind == _TIME:
            frame[column] = pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]")
        elif kind == _DAY:
            frame[column] = pd.to_datetime(values.astype("string")).astype("datetime64[us]")
        elif kind == _MONEY:
            frame[column] = pd.to_numeric(values.map(_exact), errors="raise").astype("float64")
        elif kind == _FLOAT:
            frame[column] = pd.to_numeric(values.map(_number)).astype("float64")
        elif kind == _JSON:
            frame[column] = values.astype("object")
        else:
            frame[column] = values.astype(kind)
    return frame


def _exact(value: Any) -> float | None:
    """An amount (Decimal, or a float from SQLite's SUM) rounded to the stored places."""
    return None if value is None else round(float(value), MONEY_PLACES)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _read(source: Any, name: str, columns: Mapping[str, str], *order: str) -> Any:
    """The view's rows as a frame, ordered by `order` (a leading `-`: descending)."""
    view = _view(name, columns)
    keys = [view.c[key[1:]].desc() if key.startswith("-") else view.c[key].asc() for key in order]
    statement: sa.Executable = sa.select(*view.columns).order_by(*keys)
    with _engine(source) as engine, engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(statement)]
    return _frame(rows, columns)


def session_stats(source: Any, *, metadata_columns: bool = False) -> pd.DataFrame:
    """One row per session, newest first: status, cost, tokens, timing, counts of its
    phases, instances and chat messages, and its last completed phase.

    `metadata_columns=True` also spreads each session's metadata over columns named
    `metadata.<key>` (nested keys joined by dots), for grouping and filtering.
    """
    frame = _read(source, "session_stats", _SESSION_STATS, "-created_at", "-session_id")
    if not metadata_columns or frame.empty:
        return frame
    spread = _pandas().json_normalize(frame["metadata"].tolist()).add_prefix("metadata.")
    return frame.join(spread.set_axis(frame.index))


def phase_stats(source: Any) -> pd.DataFrame:
    """One row per phase id: completions, sessions, duration and cost statistics."""
    return _read(source, "phase_stats", _PHASE_STATS, "phase_id")


def daily_costs(source: Any, days: int | None = None) -> pd.DataFrame:
    """Sessions and their cost per UTC day of creation, oldest first (`days`: the last N
    days only, today included; days without sessions are absent)."""

    frame = _read(source, "daily_costs", _DAILY_COSTS, "day")
    if days is None:
        return frame
    first = _pandas().Timestamp(datetime.now(UTC).date() - timedelta(days=days - 1))
    return frame[frame["day"] >= first].reset_index(drop=True)


def phase_durations(source: Any, percentiles: tuple[float, ...] = (0.5, 0.9, 0.99)) -> pd.DataFrame:
    """Duration percentiles per phase id (milliseconds), from every completion."""
    pd = _pandas()
    with _engine(source) as engine, engine.connect() as connection:
        rows = connection.execute(sa.select(PHASES.c.phase_id, PHASES.c.duration_ms)).all()
    frame = pd.DataFrame.from_records(rows, columns=["phase_id", "duration_ms"]).astype(
        {"phase_id": "string", "duration_ms": "Int64"}
    )
    grouped = frame.groupby("phase_id")["duration_ms"]
    result = grouped.count().rename("completions").astype("Int64").to_frame()
    for q in percentiles:
        result[f"p{round(q * 100):g}_ms"] = grouped.quantile(q).astype("float64")
    return result.reset_index()


def agent_states(
    source: Any, *, namespace: str | None = None, include_deleted: bool = False
) -> pd.DataFrame:
    """One row per agent, by namespace then agent id, with its state decoded.

    `state_data` is the saved state as Python objects, whether it was stored as JSON or
    zstd-compressed (`compressed` says which). Every namespace unless `namespace` is given;
    soft-deleted agents (`deleted_at` set) only with `include_deleted=True`.
    """
    a = AGENTS.c
    statement = sa.select(
        a.namespace,
        a.agent_id,
        a.name,
        a.status,
        a.version,
        a["metadata"],
        a.state_data,
        a.state_data_zstd,
        a.created_at,
        a.updated_at,
        a.deleted_at,
    ).order_by(a.namespace, a.agent_id)
    if namespace is not None:
        statement = statement.where(a.namespace == namespace)
    if not include_deleted:
        statement = statement.where(a.deleted_at.is_(None))
    with _engine(source) as engine, engine.connect() as connection:
        rows = [
            (
                *row[:6],
                unpack(row.state_data, row.state_data_zstd, f"state of agent {row.agent_id!r}"),
                row.state_data_zstd is not None,
                *row[8:],
            )
            for row in connection.execute(statement)
        ]
    return _frame(rows, _AGENT_STATES)


def snapshots(source: Any, *, decode: bool = False) -> pd.DataFrame:
    """One row per snapshot, newest first: its owner (`session_id`, or `namespace` and
    `agent_id`), description, times, `size_bytes` (of its JSON) and whether it is stored
    compressed. Snapshots of every namespace, expired ones included until deleted.

    `decode=True` adds a `payload` column with what each snapshot holds, decompressed
    (a session's context, phases and totals; an agent's state, status and version).
    """
    s = SNAPSHOTS.c
    columns = _SNAPSHOTS if not decode else {**_SNAPSHOTS, "payload": _JSON}
    selected: list[sa.ColumnElement[Any]] = [
        s.id,
        s.session_id,
        s.namespace,
        s.agent_id,
        s.description,
        s.created_at,
        s.expires_at,
        s.size_bytes,
        s.payload_zstd.is_not(None),
    ]
    if decode:
        selected += [s.payload, s.payload_zstd]
    statement = sa.select(*selected).order_by(s.pk.desc())
    with _engine(source) as engine, engine.connect() as connection:
        if decode:
            rows = [
                (*row[:9], unpack(row[9], row[10], f"payload of snapshot {row[0]!r}"))
                for row in connection.execute(statement)
            ]
        else:
            rows = [tuple(row) for row in connection.execute(statement)]
    return _frame(rows, columns)


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "plots need matplotlib: pip install 'statekeeper[analytics]'", name="matplotlib"
        ) from None
    return plt


def plot_cost_per_day(costs: pd.DataFrame, ax: Any) -> Any:
    """Bars of cost per UTC day (a `daily_costs` frame) on a matplotlib Axes."""
    ax.bar(costs["day"].dt.strftime("%Y-%m-%d"), costs["cost_usd"], color="#1f77b4")
    ax.set_title("Cost per day (USD)")
    ax.set_xlabel("UTC day")
    ax.set_ylabel("USD")
    ax.tick_params(axis="x", labelrotation=45)
    return ax


def plot_phase_durations(durations: pd.DataFrame, ax: Any) -> Any:
    """Median and 90th percentile duration per phase (a `phase_durations` frame), seconds."""
    positions = range(len(durations))
    ax.barh([p - 0.2 for p in positions], durations["p50_ms"] / 1000, height=0.4, label="p50")
    ax.barh([p + 0.2 for p in positions], durations["p90_ms"] / 1000, height=0.4, label="p90")
    ax.set_yticks(list(positions), durations["phase_id"].tolist())
    ax.set_title("Phase durations (s)")
    ax.set_xlabel("seconds")
    ax.legend()
    return ax


def plot_overview(source: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """Cost per day and phase durations side by side; saved as an image at `path` if given.

    Returns the matplotlib Figure. This is what `statekeeper stats --plot FILE.png` draws.
    """
    plt = _pyplot()
    figure, (costs_ax, phases_ax) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    plot_cost_per_day(daily_costs(source), costs_ax)
    plot_phase_durations(phase_durations(source), phases_ax)
    if path is not None:
        from statekeeper.files import writable_target, writing

        target = Path(path)
        writable_target(target)
        try:
            with writing(target, "write the plot"):
                figure.savefig(target, dpi=120)
        finally:
            plt.close(figure)
    return figure
