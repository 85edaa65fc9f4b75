"""An agent whose second tool needs an approval, asked with `RequestInput`, run as a Prefect flow.

`wait_agent.py start <dir> <name>` runs it; `wait_agent.py resume <flow run id> <dir> <name>` resumes it. The model
calls `step`, then `delete` (which needs approval), then answers with the tool results it saw. Files in `<dir>`:
`model.log` (one line per model request), `asks.log` (one line per `ask` call), `token.txt` (the last token asked
with), `deleted.log` (one line per `delete` execution), `output.txt` (the run's output). With
`DURABLE_AGENTS_CRASH=<label>@<n>` set, the process exits with code 86 as that unit starts.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import DeferredToolRequests

from durable_agents.prefect import PrefectAgent
from durable_agents.testing import CallCounter, inject_crash

WORK = Path(sys.argv[2] if sys.argv[1] == "start" else sys.argv[3])
NAME = sys.argv[-1]
counter = CallCounter(WORK / "model.log")


def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    returns = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
    counter.bump(f"model:{len(returns)}")
    if not returns:
        return ModelResponse(parts=[ToolCallPart("step", {"i": 0}, tool_call_id="call_step")])
    if len(returns) == 1:
        return ModelResponse(parts=[ToolCallPart("delete", {"path": "a"}, tool_call_id="call_delete")])
    return ModelResponse(parts=[TextPart("done: " + ", ".join(str(p.content) for p in returns))])


async def ask(ctx: RunContext[None], requests: DeferredToolRequests, token: str) -> None:
    with (WORK / "asks.log").open("a") as f:
        f.write(",".join(call.tool_call_id for call in requests.approvals) + "\n")
    (WORK / "token.txt").write_text(token)


agent = Agent(FunctionModel(respond), name=NAME, capabilities=[RequestInput(ask)])


@agent.tool_plain
def step(i: int) -> str:
    return f"r{i}"


@agent.tool_plain(requires_approval=True)
def delete(path: str) -> str:
    with (WORK / "deleted.log").open("a") as f:
        f.write(path + "\n")
    return f"deleted {path}"


prefect_agent = PrefectAgent(agent, heartbeat_seconds=1, event_poll_seconds=0.2)


async def main() -> None:
    inject_crash()  # DURABLE_AGENTS_CRASH=<label>@<n>, if set: exit 86 as that unit starts
    if sys.argv[1] == "start":
        result = await prefect_agent.run("go")
    else:
        result = await prefect_agent.resume(sys.argv[2])
    (WORK / "output.txt").write_text(result.output)


if __name__ == "__main__":
    asyncio.run(main())
