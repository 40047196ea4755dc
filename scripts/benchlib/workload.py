"""The seeded workload: payloads, sessions and the exact list of calls every store makes.

Everything comes from `random.Random(SEED)`, so each implementation, in its own process, gets
the same ids, payloads and choices in the same order.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Any

__all__ = [
    "AGENT_STATUS",
    "CHAT_LIMIT",
    "HISTORY_LIMIT",
    "MARKER",
    "MAX_SNAPSHOTS",
    "OPS",
    "SEARCH_LIMIT",
    "SEED",
    "AgentSave",
    "ChatArgs",
    "PhaseArgs",
    "Plan",
    "SessionSpec",
    "make_plan",
    "seeded_uuid",
    "task_words",
    "vocabulary",
]

SEED = 42
VOCAB_SIZE = 2_000
MARKER = "zqmarker"
"""A word no generated text holds ('q' is in no syllable): searching it finds one session."""
HISTORY_LIMIT = 50
CHAT_LIMIT = 100
SEARCH_LIMIT = 20
MESSAGES_PER_CHAT_SESSION = 150
CALLS_PER_AGENT = 40
"""Saves (and snapshots) per agent, on average: each agent passes MAX_SNAPSHOTS early."""
AGENT_STATUS = "running"
"""Every agent's status, at creation and in every save: a save changes no status."""
MAX_SNAPSHOTS = 10
"""Snapshots statekeeper keeps per owner (StateManager's default `max_snapshots`)."""

OPS = (
    "create_session",
    "save_phase_completion",
    "load_context",
    "get_session",
    "get_session_history",
    "add_chat_message",
    "get_chat_history",
    "search_sessions",
    "save_agent_state",
    "create_snapshot",
)
"""The timed operations, in the order every run makes them (the legacy import is separate)."""

_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]


def vocabulary(rng: random.Random) -> list[str]:
    """VOCAB_SIZE distinct pronounceable words, in a seeded order."""
    words: dict[str, None] = {}
    while len(words) < VOCAB_SIZE:
        words["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


def seeded_uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from the seeded generator."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def task_words(rng: random.Random, vocab: list[str]) -> list[str]:
    """The words of one session's task: 6 to 12 vocabulary words."""
    return rng.choices(vocab, k=rng.randint(6, 12))


def _text(rng: random.Random, vocab: list[str], size: int) -> str:
    """Words separated by spaces, about `size` characters long."""
    parts: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(vocab)
        parts.append(word)
        length += len(word) + 1
    return " ".join(parts)[:size]


@dataclass(frozen=True)
class SessionSpec:
    """What create_session is given."""

    id: str
    subject: str
    task: str
    model: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class PhaseArgs:
    """What save_phase_completion is given (output about 1 KB, context about 4 KB as JSON)."""

    session_id: str
    phase_id: str
    step: int
    output: dict[str, Any]
    context: dict[str, Any]
    cost_usd: Decimal
    duration_ms: int
    tokens_in: int
    tokens_out: int


@dataclass(frozen=True)
class ChatArgs:
    """What add_chat_message is given (about 500 bytes of content)."""

    session_id: str
    content: str


@dataclass(frozen=True)
class AgentSave:
    """What save_agent_state is given: a state of about 2 KB as JSON, status AGENT_STATUS,
    saved only over `expected_version` (0: the agent's first save, which creates it)."""

    agent_id: str
    state_data: dict[str, Any]
    expected_version: int


@dataclass
class Plan:
    """Every call of one run, with what the store must hold afterwards."""

    n: int
    sessions: list[SessionSpec]
    phases: list[PhaseArgs]
    load_targets: list[str]
    get_targets: list[str]
    chats: list[ChatArgs]
    chat_reads: list[str]
    searches: list[tuple[str, str]]
    """(query, id of the session whose task the two words come from)"""
    marker_session: str
    agents: list[AgentSave]
    """The agents' first saves (version 1), made untimed before save_agent_state's calls."""
    agent_saves: list[AgentSave]
    snapshot_targets: list[str]
    """The agent each create_snapshot call snapshots."""
    expected_cost: dict[str, Decimal] = field(default_factory=dict)

    def expected_tokens(self) -> dict[str, list[int]]:
        """Each session's [tokens_in, tokens_out] once every phase of the plan is saved."""
        tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for p in self.phases:
            tokens[p.session_id][0] += p.tokens_in
            tokens[p.session_id][1] += p.tokens_out
        return tokens

    def args(self, op: str) -> list[Any]:
        """The argument of each call of one operation, in order."""
        if op == "create_session":
            return list(self.sessions)
        if op == "save_phase_completion":
            return list(self.phases)
        if op == "load_context":
            return list(self.load_targets)
        if op == "get_session":
            return list(self.get_targets)
        if op == "get_session_history":
            return [None] * self.n
        if op == "add_chat_message":
            return list(self.chats)
        if op == "get_chat_history":
            return list(self.chat_reads)
        if op == "search_sessions":
            return [query for query, _source in self.searches]
        if op == "save_agent_state":
            return list(self.agent_saves)
        if op == "create_snapshot":
            return list(self.snapshot_targets)
        raise ValueError(op)

    def setup(self, op: str) -> list[AgentSave]:
        """What must be in the store before `op`'s calls, made untimed just before them:
        the agents that save_agent_state saves over."""
        return list(self.agents) if op == "save_agent_state" else []

    @cached_property
    def last_agent_save(self) -> dict[str, AgentSave]:
        """Each agent's last save (its creation when no timed save chose it)."""
        return {s.agent_id: s for s in [*self.agents, *self.agent_saves]}

    @cached_property
    def snapshot_counts(self) -> dict[str, int]:
        """How many snapshots were taken of each agent (before rotation)."""
        counts: dict[str, int] = defaultdict(int)
        for agent_id in self.snapshot_targets:
            counts[agent_id] += 1
        return dict(counts)

    @cached_property
    def last_phase(self) -> dict[str, PhaseArgs]:
        """The last phase saved for each session that has one."""
        return {p.session_id: p for p in self.phases}

    @cached_property
    def phase_counts(self) -> dict[str, int]:
        """How many phases each session saved."""
        counts: dict[str, int] = defaultdict(int)
        for p in self.phases:
            counts[p.session_id] += 1
        return dict(counts)

    @cached_property
    def chat_of(self) -> dict[str, list[str]]:
        """Each chat session's message contents, in insertion order."""
        messages: dict[str, list[str]] = defaultdict(list)
        for m in self.chats:
            messages[m.session_id].append(m.content)
        return dict(messages)

    def newest(self, count: int, *, before: int | None = None) -> list[str]:
        """Ids of the `count` newest sessions (created before session number `before`)."""
        stop = len(self.sessions) if before is None else before
        return [s.id for s in reversed(self.sessions[max(0, stop - count) : stop])]


def make_plan(n: int) -> Plan:
    """The calls of a run of `n` iterations per operation (n >= 150), from SEED."""
    if n < MESSAGES_PER_CHAT_SESSION:
        raise ValueError(f"need at least {MESSAGES_PER_CHAT_SESSION} iterations, got {n}")
    rng = random.Random(SEED)  # noqa: S311 - seeded, not secret
    vocab = vocabulary(rng)
    outputs = [
        {"summary": _text(rng, vocab, 880), "score": i / 16, "tags": rng.sample(vocab, 5)}
        for i in range(16)
    ]
    contexts = [
        {
            "company": f"Company {i}",
            "notes": [_text(rng, vocab, 470) for _ in range(8)],
            "step": i,
        }
        for i in range(16)
    ]
    messages = [_text(rng, vocab, 500) for _ in range(32)]

    sessions = []
    for i in range(n):
        words = task_words(rng, vocab)
        sessions.append(
            SessionSpec(
                id=seeded_uuid(rng),
                subject=f"Company {i}",
                task=" ".join(words),
                model=rng.choice(("opus", "sonnet", "haiku")),
                metadata={"source": "bench", "n": i},
            )
        )
    marker = n // 3
    sessions[marker] = replace(sessions[marker], task=f"{sessions[marker].task} {MARKER}")
    ids = [s.id for s in sessions]

    phases = []
    done: dict[str, int] = defaultdict(int)
    expected_cost: dict[str, Decimal] = defaultdict(lambda: Decimal(0))
    for _ in range(n):
        sid = rng.choice(ids)
        step = done[sid]
        done[sid] += 1
        cost = Decimal(rng.randint(1, 5_000)) / 100_000
        expected_cost[sid] += cost
        phases.append(
            PhaseArgs(
                session_id=sid,
                phase_id=f"phase-{step}",
                step=step,
                output=rng.choice(outputs),
                context=rng.choice(contexts),
                cost_usd=cost,
                duration_ms=rng.randint(100, 60_000),
                tokens_in=rng.randint(100, 5_000),
                tokens_out=rng.randint(100, 5_000),
            )
        )
    position = {sid: i for i, sid in enumerate(ids)}
    with_context = sorted(done, key=position.__getitem__)

    # Round robin over a few sessions, so each holds more than CHAT_LIMIT messages.
    chat_sessions = ids[: max(1, n // MESSAGES_PER_CHAT_SESSION)]
    chats = [
        ChatArgs(chat_sessions[i % len(chat_sessions)], rng.choice(messages)) for i in range(n)
    ]
    searches = []
    for _ in range(n):
        source = rng.choice(sessions)
        first, second = rng.sample(sorted(set(source.task.split()) - {MARKER}), 2)
        searches.append((f"{first} {second}", source.id))
    load_targets = [rng.choice(with_context) for _ in range(n)]
    get_targets = [rng.choice(ids) for _ in range(n)]
    chat_reads = [rng.choice(chat_sessions) for _ in range(n)]

    # The agent store, drawn after everything above so that the other operations' calls
    # stay what they were before it was added.
    states = [
        {
            "agent": f"agent {i}",
            "step": i,
            "plan": [_text(rng, vocab, 240) for _ in range(8)],
            "done": i % 2 == 0,
        }
        for i in range(16)
    ]
    agent_ids = [f"agent-{seeded_uuid(rng)}" for _ in range(max(1, n // CALLS_PER_AGENT))]
    agents = [AgentSave(aid, rng.choice(states), 0) for aid in agent_ids]
    versions = dict.fromkeys(agent_ids, 1)
    agent_saves = []
    for _ in range(n):
        aid = rng.choice(agent_ids)
        agent_saves.append(AgentSave(aid, rng.choice(states), versions[aid]))
        versions[aid] += 1
    return Plan(
        n=n,
        sessions=sessions,
        phases=phases,
        load_targets=load_targets,
        get_targets=get_targets,
        chats=chats,
        chat_reads=chat_reads,
        searches=searches,
        marker_session=sessions[marker].id,
        agents=agents,
        agent_saves=agent_saves,
        snapshot_targets=[rng.choice(agent_ids) for _ in range(n)],
        expected_cost=dict(expected_cost),
    )
