"""Two turns of an OpenAI Agents SDK conversation kept by statekeeper, on a scripted model
(no API key): `python examples/openai_agents_example.py [STORE_URL]` (default: a temp file)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agents import Agent, ModelResponse, Runner, Usage, function_tool, set_tracing_disabled
from agents.items import TResponseInputItem, TResponseStreamEvent
from agents.models.interface import Model
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from statekeeper import AsyncStateManager
from statekeeper.integrations.openai_agents import StatekeeperSession

SESSION_ID = "weather-chat"


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city (always fine here)."""
    return f"sunny and 21 degrees in {city}"


class ScriptedModel(Model):
    """Asks for the weather tool on the first question, then answers from what it sees."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        *args: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        """One reply to the whole input, which the runner built from the session's history."""
        items: list[Any] = [{"role": "user", "content": input}] if isinstance(input, str) else input
        last = items[-1]
        if last.get("type") == "function_call_output":
            output = ResponseOutputMessage(
                id="msg-weather",
                type="message",
                role="assistant",
                status="completed",
                content=[
                    ResponseOutputText(
                        type="output_text", text=f"It is {last['output']}.", annotations=[]
                    )
                ],
            )
            return ModelResponse(output=[output], usage=Usage(), response_id=None)
        questions = [item for item in items if item.get("role") == "user"]
        if len(questions) == 1:
            call = ResponseFunctionToolCall(
                type="function_call",
                id="fc-1",
                call_id="call-1",
                name="get_weather",
                arguments='{"city": "Paris"}',
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        text = f"You have asked me {len(questions)} questions, this one included."
        answer = ResponseOutputMessage(
            id="msg-count",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
        )
        return ModelResponse(output=[answer], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        """Not used: the example runs without streaming."""
        raise NotImplementedError


async def main(url: str) -> None:
    """Two turns of one conversation, then what statekeeper holds of it."""
    set_tracing_disabled(True)  # no API key: nothing to export traces to
    agent = Agent(name="Forecaster", model=ScriptedModel(), tools=[get_weather])
    async with AsyncStateManager(url) as am:
        session = StatekeeperSession(SESSION_ID, am)
        first = await Runner.run(agent, "What is the weather in Paris?", session=session)
        print("turn 1:", first.final_output)
        second = await Runner.run(agent, "How many questions so far?", session=session)
        print("turn 2:", second.final_output)

        items = await session.get_items()
        print(f"session items: {len(items)}")
        for message in await am.get_chat_history(SESSION_ID):
            print(f"  {message.role.value:9} {message.content.replace(chr(10), ' ')[:60]}")
        hits = await am.search_sessions("sunny")
        print("search 'sunny':", [hit.session_id for hit in hits])
        print("popped:", await session.pop_item() == items[-1])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(main(str(Path(folder) / "state.db")))
