"""A 4-round tool agent run as a Prefect flow; `start` may be crashed by DURABLE_AGENTS_CRASH, `resume <id>` resumes.

Model requests are counted in `<dir>/model.log`, tool executions in `<dir>/tools.log`, the prompt each model
request sees in `<dir>/prompts.log`, and the tool results the event-stream handler gets in `<dir>/events.log`.
`CRASH_AGENT_PROMPT` picks the prompt (`plain`, `tag`, `multimodal`); `CRASH_AGENT_RUN_ID`, if set, is the
`run_id`. `DURABLE_AGENTS_TEST_SPANS=<file>` appends every finished span to that file (a run starts under a span
`caller`). The deps hold a set, whose JSON order depends on PYTHONHASHSEED: start and resume run with different seeds.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import AgentStreamEvent, FunctionToolResultEvent, ImageUrl, ModelMessage, ModelRequest
from pydantic_ai.models.function import AgentInfo, DeltaToolCalls, FunctionModel

from durable_agents.prefect import PrefectAgent
from durable_agents.testing import CallCounter, inject_crash, tool_loop_model

sys.path.insert(0, str(Path(__file__).parents[3]))
from tests.telemetry_support import install_file_exporter

WORK = Path(sys.argv[2] if sys.argv[1] == "start" else sys.argv[3])
NAME = sys.argv[-1]
PROMPTS: dict[str, Any] = {
    "plain": "go",
    "tag": "<task>do it</task>",
    "multimodal": ["look", ImageUrl("https://example.com/x.png")],
}


@dataclass
class Deps:
    tags: set[str]


def _record_prompt(messages: list[ModelMessage]) -> None:
    first = messages[0]
    assert isinstance(first, ModelRequest)
    with (WORK / "prompts.log").open("a") as f:
        f.write(f"{first.parts[-1].content!r}\n")  # type: ignore[union-attr]


loop = tool_loop_model(4, counter=CallCounter(WORK / "model.log"))
assert loop.function is not None and loop.stream_function is not None


def respond(messages: list[ModelMessage], info: AgentInfo) -> Any:
    _record_prompt(messages)
    return loop.function(messages, info)  # type: ignore[misc]


async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str | DeltaToolCalls]:
    _record_prompt(messages)
    async for item in loop.stream_function(messages, info):  # type: ignore[misc]
        yield item


async def handler(ctx: RunContext[Deps], events: AsyncIterable[AgentStreamEvent]) -> None:
    async for event in events:
        if isinstance(event, FunctionToolResultEvent):
            with (WORK / "events.log").open("a") as f:
                f.write(f"{event.part.content}\n")


agent = Agent(
    FunctionModel(respond, stream_function=stream, model_name=loop.model_name),
    name=NAME,
    deps_type=Deps,
)


@agent.tool_plain
def step(i: int) -> str:
    with (WORK / "tools.log").open("a") as f:
        f.write(f"{i}\n")
    return f"r{i}"


prefect_agent = PrefectAgent(agent, event_stream_handler=handler, heartbeat_seconds=1)


async def main() -> None:
    install_file_exporter()
    inject_crash()
    if sys.argv[1] == "start":
        prompt = PROMPTS[os.environ.get("CRASH_AGENT_PROMPT", "plain")]
        deps = Deps({"alpha", "beta", "gamma", "delta", "epsilon"})
        run_id = os.environ.get("CRASH_AGENT_RUN_ID")
        with trace.get_tracer("tests").start_as_current_span("caller"):
            result = await prefect_agent.run(prompt, deps=deps, **({"run_id": run_id} if run_id else {}))
    else:
        result = await prefect_agent.resume(sys.argv[2])
    (WORK / "output.txt").write_text(result.output)


if __name__ == "__main__":
    asyncio.run(main())
