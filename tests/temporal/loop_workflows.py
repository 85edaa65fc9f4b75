"""Agents and a workflow that feed a Temporal run bad input: each must fail the run with a typed error, fast.

Kept free of test-only imports: the sandbox re-imports it. Calls are counted in `CALLS`, which the activities
(outside the sandbox) update, so a test sees how often a tool ran or a model request was paid.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent, RunContext
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from temporalio import workflow

from durable_agents.temporal import TemporalAgent

CALLS: Counter[str] = Counter()
"""How often each tool ran and each model was asked, by name (in the worker's process)."""
PLAIN_TOOLS: list[list[str]] = []
"""The tools the plain model was offered, per request."""


class Opaque:
    """Not data: pydantic cannot serialize it."""


def _one_tool_call(name: str) -> FunctionModel:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        CALLS[f"model:{name}"] += 1
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart(name, {}, tool_call_id="call_0")])
        return ModelResponse(parts=[TextPart("done")])

    return FunctionModel(respond)


def _result_agent(name: str, value: Any) -> TemporalAgent[None, str]:
    agent = Agent(_one_tool_call(name), name=f"bad_{name}")

    @agent.tool_plain(name=name)
    async def tool() -> Any:
        CALLS[name] += 1
        return value() if callable(value) else value

    return TemporalAgent(agent)


lock_agent = _result_agent("lock", threading.Lock)
opaque_agent = _result_agent("opaque", Opaque)
surrogate_agent = _result_agent("surrogate", "bad \ud800 string")


def _answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    CALLS["model:plain"] += 1
    PLAIN_TOOLS.append(sorted(t.name for t in info.function_tools))
    return ModelResponse(parts=[TextPart("ok")])


plain_agent = TemporalAgent(Agent(FunctionModel(_answer), name="bad_plain"))


def _sync_agent(name: str, body: Any) -> TemporalAgent[None, str]:
    agent = Agent(_one_tool_call(name), name=f"bad_{name}")
    agent.tool_plain(name=name)(body)
    return TemporalAgent(agent, tool_activity_config={name: None})


def _sleepy() -> str:
    CALLS["sleepy"] += 1
    time.sleep(3)
    return "slept"


def _reader() -> str:
    CALLS["reader"] += 1
    with open(__file__) as f:
        return f.read(10)


sleepy_agent = _sync_agent("sleepy", _sleepy)
reader_agent = _sync_agent("reader", _reader)


async def _raising_handler(ctx: RunContext[Any], stream: Any) -> None:
    async for _ in stream:
        raise ValueError("the handler broke")


def _streaming_answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    CALLS["model:handler"] += 1
    return ModelResponse(parts=[TextPart("ok")])


async def _stream_answer(messages: list[ModelMessage], info: AgentInfo) -> Any:
    CALLS["model:handler"] += 1
    yield "ok"


handler_agent = TemporalAgent(
    Agent(FunctionModel(_streaming_answer, stream_function=_stream_answer), name="bad_handler"),
    event_stream_handler=_raising_handler,
)

_GARBAGE = "import sys, time; print('garbage, not JSON-RPC', flush=True); time.sleep(60)"
_MINI_SERVER = str(Path(__file__).with_name("mini_mcp_server.py"))


def _mcp_agent(name: str, command: str, args: list[str]) -> TemporalAgent[None, str]:
    server = MCPToolset(StdioTransport(command, args), id=name, init_timeout=2, read_timeout=2)
    return TemporalAgent(Agent(FunctionModel(_answer), name=f"bad_{name}", toolsets=[server]))


mcp_missing_agent = _mcp_agent("mcp_missing", "/nonexistent/mcp-server-binary", [])
mcp_garbage_agent = _mcp_agent("mcp_garbage", sys.executable, ["-c", _GARBAGE])
mcp_alive_agent = _mcp_agent("mcp_alive", sys.executable, [_MINI_SERVER, "garbage"])


def _big_history(n: int) -> list[ModelMessage]:
    # The same two messages over and over: building tens of thousands of distinct ones would itself take seconds
    # in the sandbox, and the history under test is the run's input, not the workflow's work.
    exchange: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("q" * 280)]),
        ModelResponse(parts=[TextPart("a" * 280)]),
    ]
    return exchange * (n // 2)


AGENTS: dict[str, TemporalAgent[None, str]] = {
    "lock": lock_agent,
    "opaque": opaque_agent,
    "surrogate": surrogate_agent,
    "sleepy": sleepy_agent,
    "reader": reader_agent,
    "handler": handler_agent,
    "mcp_missing": mcp_missing_agent,
    "mcp_garbage": mcp_garbage_agent,
    "mcp_alive": mcp_alive_agent,
}


@workflow.defn
class BadInputWorkflow:
    """Runs one bad-input case by name."""

    @workflow.run
    async def run(self, kind: str) -> str:
        if kind in AGENTS:
            return (await AGENTS[kind].run("go")).output
        if kind == "big_history":
            return (await plain_agent.run("go", message_history=_big_history(24_000))).output
        raise ValueError(kind)


ALL_AGENTS = [*AGENTS.values(), plain_agent]
