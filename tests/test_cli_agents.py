"""`statekeeper agents`, `snapshots` and `events` on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from statekeeper import StateManager
from statekeeper.models import SnapshotRow
from tests.test_cli import ISO_TIME, assert_fails, cli, ok_json


def seed_agents(url: str) -> None:
    """In "default": planner (running, two transitions), coder (idle), old (deleted);
    in "other": scout."""
    with StateManager(url) as sm:
        sm.save_agent_state(
            {"agent_id": "planner", "name": "Planner", "state_data": {"plan": [1, 2]}}
        )
        sm.update_agent_status("planner", "running", reason="[b]go[/b]")
        sm.save_agent_state({"agent_id": "coder", "metadata": {"lang": "py"}})
        sm.save_agent_state({"agent_id": "old"})
        sm.delete_agent("old")
    with StateManager(url, namespace="other") as other:
        other.save_agent_state({"agent_id": "scout", "state_data": "looking"})


def expire(url: str, snapshot_id: str) -> None:
    """Move a snapshot's expiry into the past, as time passing would."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    with StateManager(url) as sm, sm.engine.begin() as connection:
        connection.execute(
            sa.update(SnapshotRow).where(SnapshotRow.id == snapshot_id).values(expires_at=past)
        )


# agents ---------------------------------------------------------------------------------


def test_agents_list(store_url: str) -> None:
    seed_agents(store_url)
    listed = ok_json(store_url, "agents", "list")
    assert [a["agent_id"] for a in listed] == ["coder", "planner"]
    assert listed[1]["state_data"] == {"plan": [1, 2]}
    assert listed[1]["status"] == "running"
    running = ok_json(store_url, "agents", "list", "--status", "running")
    assert [a["agent_id"] for a in running] == ["planner"]
    everything = ok_json(store_url, "agents", "list", "--deleted")
    assert [a["agent_id"] for a in everything] == ["coder", "old", "planner"]
    assert datetime.fromisoformat(everything[1]["deleted_at"]).tzinfo is not None

    table = cli(store_url, "agents", "list").stdout
    assert "planner" in table and "Planner" in table and "coder" in table
    assert "old" not in table and "deleted_at" not in table
    assert ISO_TIME.search(table)
    deleted = cli(store_url, "agents", "list", "--deleted").stdout
    assert "old" in deleted and "deleted_at" in deleted


def test_agents_list_rejects_a_bad_status(store_url: str) -> None:
    result = cli(store_url, "agents", "list", "--status", "bogus", "--json")
    assert_fails(result, 1, "invalid status")
    assert result.stdout == ""


def test_agents_show(store_url: str) -> None:
    seed_agents(store_url)
    shown = ok_json(store_url, "agents", "show", "planner")
    assert shown == {
        "agent_id": "planner",
        "name": "Planner",
        "status": "running",
        "metadata": {},
        "state_data": {"plan": [1, 2]},
        "version": 2,
        "created_at": shown["created_at"],
        "updated_at": shown["updated_at"],
        "namespace": "default",
        "deleted_at": None,
    }
    assert ok_json(store_url, "agents", "show", "coder")["metadata"] == {"lang": "py"}

    text = cli(store_url, "agents", "show", "planner").stdout
    for fragment in ("state_data", '{"plan": [1, 2]}', "running", "namespace", "default"):
        assert fragment in text
    assert ISO_TIME.search(text)


def test_agents_show_unknown_or_deleted(store_url: str) -> None:
    seed_agents(store_url)
    result = cli(store_url, "agents", "show", "nope", "--json")
    assert_fails(result, 1, "agent 'nope' in namespace 'default' not found")
    assert result.stdout == ""
    assert_fails(cli(store_url, "agents", "show", "old"), 1, "agent 'old' in namespace")
    assert "is deleted" in cli(store_url, "agents", "show", "old").stderr


def test_agents_history(store_url: str) -> None:
    seed_agents(store_url)
    history = ok_json(store_url, "agents", "history", "planner")
    assert [(t["state_before"], t["state_after"], t["reason"]) for t in history] == [
        ("idle", "running", "[b]go[/b]"),
        (None, "idle", "created"),
    ]
    (newest,) = ok_json(store_url, "agents", "history", "planner", "--limit", "1")
    assert newest == history[0]
    assert len(ok_json(store_url, "agents", "history", "old")) == 1  # deleted agents keep it

    text = cli(store_url, "agents", "history", "planner").stdout
    assert text.index("[b]go[/b]") < text.index(" created ")  # newest first
    assert "[b]go[/b]" in text  # stored text is never read as rich markup
    assert_fails(cli(store_url, "agents", "history", "nope"), 1, "'nope' in namespace")
    assert_fails(cli(store_url, "agents", "history", "planner", "--limit", "0"), 1, "limit")


def test_agents_namespaces_are_isolated(store_url: str) -> None:
    seed_agents(store_url)
    (scout,) = ok_json(store_url, "agents", "list", "--namespace", "other")
    assert (scout["agent_id"], scout["namespace"], scout["state_data"]) == (
        "scout",
        "other",
        "looking",
    )
    assert ok_json(store_url, "agents", "show", "scout", "--namespace", "other")["version"] == 1
    assert ok_json(store_url, "agents", "list", "--namespace", "empty") == []
    assert_fails(cli(store_url, "agents", "show", "scout"), 1, "namespace 'default' not found")
    assert_fails(
        cli(store_url, "agents", "show", "planner", "--namespace", "other"),
        1,
        "agent 'planner' in namespace 'other' not found",
    )
    assert_fails(
        cli(store_url, "agents", "history", "planner", "--namespace", "other"),
        1,
        "agent 'planner' in namespace 'other' not found",
    )
    history = ok_json(store_url, "agents", "history", "scout", "--namespace", "other")
    assert [t["state_after"] for t in history] == ["idle"]


# snapshots ------------------------------------------------------------------------------


def test_snapshots_list(store_url: str) -> None:
    seed_agents(store_url)
    with StateManager(store_url) as sm:
        sid = sm.create_session("acme")
        of_session = sm.create_snapshot(session_id=sid, description="[i]first[/i]")
        of_agent = sm.create_snapshot(agent_id="planner")
    with StateManager(store_url, namespace="other") as other:
        of_scout = other.create_snapshot(agent_id="scout")

    listed = ok_json(store_url, "snapshots", "list")
    assert [s["id"] for s in listed] == [of_agent, of_session]  # newest first
    assert listed[1]["session_id"] == sid
    assert listed[1]["description"] == "[i]first[/i]"
    assert listed[0]["agent_id"] == "planner"
    assert [s["id"] for s in ok_json(store_url, "snapshots", "list", "--session", sid)] == [
        of_session
    ]
    assert [s["id"] for s in ok_json(store_url, "snapshots", "list", "--agent", "planner")] == [
        of_agent
    ]
    in_other = ok_json(store_url, "snapshots", "list", "--namespace", "other")
    assert [s["id"] for s in in_other] == [of_scout, of_session]  # sessions belong to all
    assert ok_json(store_url, "snapshots", "list", "--agent", "scout") == []

    table = cli(store_url, "snapshots", "list").stdout
    assert of_session in table and of_agent in table and of_scout not in table
    assert "[i]first[/i]" in table
    assert ISO_TIME.search(table)


def test_snapshots_restore_a_session_snapshot(store_url: str) -> None:
    with StateManager(store_url) as sm:
        sid = sm.create_session("acme")
        sm.save_phase_completion(sid, "plan", {"steps": 2}, 100, "0.10", context={"k": 1})
        snapshot = sm.create_snapshot(session_id=sid, description="after plan")
        sm.save_phase_completion(sid, "build", "ok", 50, "1.00", context={"k": 2})

    restored = ok_json(store_url, "snapshots", "restore", snapshot)
    assert (restored["id"], restored["session_id"], restored["description"]) == (
        snapshot,
        sid,
        "after plan",
    )
    with StateManager(store_url) as sm:
        assert [p.phase_id for p in sm.get_completed_phases(sid)] == ["plan"]
        context = sm.load_context(sid)
        assert context is not None and context.data == {"k": 1}
        sm.save_phase_completion(sid, "build", "ok", 50, "1.00")
    result = cli(store_url, "snapshots", "restore", snapshot)
    assert result.stdout == f"restored snapshot {snapshot} to session {sid}\n"
    assert "snapshot.restored" in [
        e["event_type"] for e in ok_json(store_url, "events", "list", "--session", sid)
    ]


def test_snapshots_restore_an_agent_snapshot(store_url: str) -> None:
    seed_agents(store_url)
    with StateManager(store_url) as sm:
        snapshot = sm.create_snapshot(agent_id="planner")
        sm.save_agent_state({"agent_id": "planner", "status": "failed", "state_data": None})
    result = cli(store_url, "snapshots", "restore", snapshot)
    assert result.stdout == f"restored snapshot {snapshot} to agent planner\n"
    planner = ok_json(store_url, "agents", "show", "planner")
    assert (planner["status"], planner["state_data"]) == ("running", {"plan": [1, 2]})


def test_snapshots_restore_unknown_or_of_another_namespace(store_url: str) -> None:
    seed_agents(store_url)
    with StateManager(store_url) as sm:
        snapshot = sm.create_snapshot(agent_id="planner")
    result = cli(store_url, "snapshots", "restore", "nope", "--json")
    assert_fails(result, 1, "snapshot 'nope': not found")
    assert result.stdout == ""
    assert_fails(
        cli(store_url, "snapshots", "restore", snapshot, "--namespace", "other"),
        1,
        f"snapshot '{snapshot}': not found",
    )
    expire(store_url, snapshot)
    assert_fails(cli(store_url, "snapshots", "restore", snapshot), 1, "expired at")


def test_snapshots_prune(store_url: str) -> None:
    seed_agents(store_url)
    with StateManager(store_url, max_snapshots=None) as sm:
        oldest, middle, newest = (sm.create_snapshot(agent_id="planner") for _ in range(3))
        doomed = sm.create_snapshot(agent_id="coder")
        expire(store_url, doomed)
    with StateManager(store_url, namespace="other") as other:
        elsewhere = other.create_snapshot(agent_id="scout", expires_at=timedelta(hours=1))
    expire(store_url, elsewhere)
    everything = {oldest, middle, newest, doomed}

    dry = ok_json(store_url, "snapshots", "prune", "--keep", "1", "--dry-run")
    assert dry == {
        "dry_run": True,
        "expired": [doomed],
        "over_limit": [oldest, middle],
        "total": 3,
    }
    assert {s["id"] for s in ok_json(store_url, "snapshots", "list")} == everything
    text = cli(store_url, "snapshots", "prune", "--keep", "1", "--dry-run").stdout
    assert text.startswith("would delete 3 snapshots: 1 expired, 2 over the limit\n")
    assert oldest in text and "over the limit" in text and doomed in text
    assert {s["id"] for s in ok_json(store_url, "snapshots", "list")} == everything

    assert cli(store_url, "snapshots", "prune", "--keep", "2").stdout.startswith(
        "deleted 2 snapshots: 1 expired, 1 over the limit\n"
    )
    assert {s["id"] for s in ok_json(store_url, "snapshots", "list")} == {middle, newest}
    assert ok_json(store_url, "snapshots", "prune", "--keep", "1") == {
        "dry_run": False,
        "expired": [],
        "over_limit": [middle],
        "total": 1,
    }
    assert cli(store_url, "snapshots", "prune").stdout == (
        "deleted 0 snapshots: 0 expired, 0 over the limit\n"
    )
    # The other namespace's expired agent snapshot was never this namespace's to prune.
    assert ok_json(store_url, "snapshots", "prune", "--namespace", "other")["expired"] == [
        elsewhere
    ]
    assert_fails(cli(store_url, "snapshots", "prune", "--keep", "0"), 1, "keep")


# events ---------------------------------------------------------------------------------


def seed_events(url: str) -> str:
    """A session with four events of its own, and two deploy events outside any session."""
    with StateManager(url) as sm:
        sid = sm.create_session("acme")
        sm.record_event("deploy", "deploy of billing failed", session_id=sid)
        sm.record_event("deploy", "deploy of search succeeded")
        sm.record_event("alert", "billing [red]failed[/red] over", actor_type="user")
        sm.save_phase_completion(sid, "plan", "ok", 10, "0.01")
        sm.record_event("deploy", "deploy of billing retried", session_id=sid)
    return sid


def test_events_list_by_session(store_url: str) -> None:
    sid = seed_events(store_url)
    events = ok_json(store_url, "events", "list", "--session", sid)
    assert [e["event_type"] for e in events] == [
        "session.created",
        "deploy",
        "phase.completed",
        "deploy",
    ]
    assert {e["session_id"] for e in events} == {sid}
    first = ok_json(store_url, "events", "list", "--session", sid, "--limit", "3")
    rest = ok_json(store_url, "events", "list", "--session", sid, "--after", first[-1]["id"])
    assert first + rest == events

    text = cli(store_url, "events", "list", "--session", sid).stdout
    assert "deploy of billing failed" in text and "system:statekeeper" in text
    assert ISO_TIME.search(text)
    assert_fails(cli(store_url, "events", "list", "--session", sid, "--limit", "0"), 1, "limit")


def test_events_list_by_type(store_url: str) -> None:
    seed_events(store_url)
    deploys = ok_json(store_url, "events", "list", "--type", "deploy")
    assert [e["content"] for e in deploys] == [
        "deploy of billing failed",
        "deploy of search succeeded",
        "deploy of billing retried",
    ]
    (second,) = ok_json(
        store_url, "events", "list", "--type", "deploy", "--after", deploys[0]["id"], "--limit", "1"
    )
    assert second == deploys[1]
    alert = cli(store_url, "events", "list", "--type", "alert").stdout
    assert "billing [red]failed[/red] over" in alert and "user:" in alert
    assert ok_json(store_url, "events", "list", "--type", "nothing") == []


@pytest.mark.parametrize(
    "choice", [[], ["--session", "x", "--type", "deploy"]], ids=["neither", "both"]
)
def test_events_list_needs_exactly_one_of_session_and_type(
    store_url: str, choice: list[str]
) -> None:
    result = cli(store_url, "events", "list", *choice, "--json")
    assert_fails(result, 1, "give exactly one of --session and --type")
    assert result.stdout == ""


def test_events_search(store_url: str) -> None:
    sid = seed_events(store_url)
    hits = ok_json(store_url, "events", "search", "billing failed")
    assert [e["content"] for e in hits] == [
        "billing [red]failed[/red] over",
        "deploy of billing failed",
    ]
    (page,) = ok_json(store_url, "events", "search", "billing failed", "--limit", "1")
    (rest,) = ok_json(store_url, "events", "search", "billing failed", "--before", page["id"])
    assert [page, rest] == hits
    by_type = ok_json(store_url, "events", "search", "billing", "--type", "alert")
    assert [e["event_type"] for e in by_type] == ["alert"]
    in_session = ok_json(store_url, "events", "search", "billing", "--session", sid)
    assert [e["content"] for e in in_session] == [
        "deploy of billing retried",
        "deploy of billing failed",
    ]
    assert ok_json(store_url, "events", "search", '"(* NEAR') == []

    text = cli(store_url, "events", "search", "billing")
    assert text.exit_code == 0
    assert "billing [red]failed[/red] over" in text.stdout
    nothing = cli(store_url, "events", "search", "nowhere")
    assert (nothing.exit_code, nothing.stdout) == (0, "no event matches 'nowhere'\n")
    assert_fails(cli(store_url, "events", "search", "x", "--limit", "0"), 1, "limit")
    assert_fails(cli(store_url, "events", "search", "x", "--before", "nope"), 1, "before")


# a store that does not exist yet --------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["agents", "list"],
        ["snapshots", "list"],
        ["events", "list", "--type", "deploy"],
        ["events", "search", "billing"],
    ],
    ids=lambda command: " ".join(command),
)
def test_read_commands_treat_a_missing_file_as_sessions_list_does(
    tmp_path: Path, command: list[str]
) -> None:
    reference = tmp_path / "sessions.db"
    expected = cli(str(reference), "sessions", "list", "--json")
    missing = tmp_path / "new.db"
    result = cli(str(missing), *command, "--json")
    assert (result.exit_code, result.stdout) == (expected.exit_code, expected.stdout)
    assert missing.exists() == reference.exists()
