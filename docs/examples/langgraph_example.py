"""A LangGraph StateGraph checkpointed by statekeeper: a thread survives its process, and
shows up as a session. Plain Python nodes, no API key.

Run: python examples/langgraph_example.py [STORE_URL_OR_PATH]  (default: a temporary file)
"""

from __future__ import annotations

import operator
import sys
import tempfile
from pathlib import Path
from typing import Annotated, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from statekeeper import StateManager
from statekeeper.integrations.langgraph import StatekeeperSaver


class Notes(TypedDict):
    topic: str
    notes: Annotated[list[str], operator.add]


def research(state: Notes) -> dict[str, list[str]]:
    """Stands in for a model or tool call."""
    return {"notes": [f"fact {len(state['notes']) + 1} about {state['topic']}"]}


def review(state: Notes) -> dict[str, list[str]]:
    return {"notes": [f"reviewed {len(state['notes'])} notes"]}


def build(saver: StatekeeperSaver) -> CompiledStateGraph[Notes, None, Notes, Notes]:
    builder = StateGraph(Notes)
    builder.add_node("research", research)
    builder.add_node("review", review)
    builder.add_edge(START, "research")
    builder.add_edge("research", "review")
    builder.add_edge("review", END)
    return builder.compile(checkpointer=saver)


def main(store: str) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": "tides-report"}}
    with StateManager(store) as sm:
        # Optional: a session made up front gives the thread a subject that search finds.
        sm.create_session("Report on tides", kind="langgraph", session_id="tides-report")

    with StatekeeperSaver.from_conn_string(store) as saver:
        first = build(saver).invoke({"topic": "tides", "notes": []}, config)
    print("first run:", first["notes"])

    # A new saver, as a new process would open: the thread continues where it stopped.
    with StatekeeperSaver.from_conn_string(store) as saver:
        graph = build(saver)
        second = graph.invoke({"topic": "tides", "notes": []}, config)
        steps = len(list(graph.get_state_history(config)))
    print("second run:", second["notes"])
    print("checkpoints in the thread:", steps)
    assert len(second["notes"]) == 4, second

    with StateManager(store) as sm:
        session = sm.get_session("tides-report")
        assert session is not None
        assert session.kind == "langgraph"
        print("session:", session.id, session.kind, session.subject)
        hits = sm.search_sessions("tides")
        print("search 'tides':", [hit.session_id for hit in hits])
    print("ok")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(str(Path(folder) / "state.db"))
