"""Agents that every engine must run exactly as the bare agent does (kept sandbox-importable: Temporal workflows
import this module, so no test-only imports).

Each scenario is a plain pydantic-ai `Agent` with a name; the parity tests wrap the same agent for every engine.
What the models saw and how often tools ran is recorded in module-level structures: units run in the test
process on every engine (the Temporal worker runs in the test process too), so the tests can read them.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import logfire
from pydantic import BaseModel
from pydantic_ai import Agent, ModelRetry, NativeOutput, RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.capabilities.process_history import ProcessHistory
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolDefinition
from pydantic_ai.toolsets import ExternalToolset, FunctionToolset
from pydantic_ai.usage import UsageLimits
from temporalio import workflow

from durable_agents.testing import tool_loop_model

from . import data_analyst

with workflow.unsafe.imports_passed_through():
    import tests.parity.inbox as inbox  # the same list in Temporal's workflow sandbox as in the test process

SEEN: list[list[ModelMessage]] = []
"""Every request's messages, as the scenario models received them (cleared by the tests)."""
CALLS: Counter[str] = Counter()
"""How many times each scenario tool ran (cleared by the tests)."""


def tool_returns(messages: list[ModelMessage]) -> list[Any]:
    """The contents of every tool return in `messages`, oldest first."""
    return [
        p.content for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)
    ]


# ---------------------------------------------------------------- a history processor that redacts in place

_loop = tool_loop_model(3, final="ok")


def _recording_loop(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    SEEN.append(copy.deepcopy(messages))
    return _loop.function(messages, info)  # type: ignore[misc,return-value]


def _redact_old_tool_results(messages: list[ModelMessage]) -> list[ModelMessage]:
    parts = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
    for part in parts[:-1]:
        part.content = "[redacted]"  # edited in place: the common privacy pattern
    return messages


redact = Agent(
    FunctionModel(_recording_loop), name="parity_redact", capabilities=[ProcessHistory(_redact_old_tool_results)]
)


@redact.tool_plain
def step(i: int) -> str:
    CALLS["parity_redact.step"] += 1
    return f"secret-{i}"


# ---------------------------------------------------------------- a dynamic toolset that grows after the first step


def _grow_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    names = sorted(t.name for t in info.function_tools)
    returns = tool_returns(messages)
    if not returns:
        return ModelResponse(parts=[ToolCallPart("first", {"x": 1}, tool_call_id="c1")])
    if "second" in names and len(returns) == 1:
        return ModelResponse(parts=[ToolCallPart("second", {"x": 2}, tool_call_id="c2")])
    return ModelResponse(parts=[TextPart(f"offered={names} results={returns}")])


grow = Agent(FunctionModel(_grow_model), name="parity_grow")


@grow.toolset(id="grow")
def _growing(ctx: RunContext[None]) -> FunctionToolset[None]:
    tools = FunctionToolset[None]()

    @tools.tool_plain
    def first(x: int) -> str:
        CALLS["parity_grow.first"] += 1
        return f"first:{x}"

    if ctx.run_step > 1:

        @tools.tool_plain
        def second(x: int) -> str:
            CALLS["parity_grow.second"] += 1
            return f"second:{x}"

    return tools


# ---------------------------------------------------------------- deterministic failures inside tools

unserializable = Agent(tool_loop_model(1), name="parity_unserializable")


@unserializable.tool_plain(name="step")
def _lock(i: int) -> Any:
    CALLS["parity_unserializable.step"] += 1
    return threading.Lock()  # no JSON form: a deterministic failure, never worth a retry


inner = Agent(tool_loop_model(0, final="inner"), name="parity_inner")
limited = Agent(tool_loop_model(1), name="parity_limited")


@limited.tool(name="step")
async def _delegate(ctx: RunContext[None], i: int) -> str:
    CALLS["parity_limited.step"] += 1
    result = await inner.run("go", usage=ctx.usage, usage_limits=UsageLimits(request_limit=1))
    return result.output


# ---------------------------------------------------------------- tools that change deps


@dataclass
class Gate:
    unlocked: bool = False
    keep: dict[str, Any] = field(default_factory=dict[str, Any])


def _follow_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    names = sorted(t.name for t in info.function_tools)
    returns = tool_returns(messages)
    if not returns:
        return ModelResponse(parts=[ToolCallPart("unlock", {}, tool_call_id="c1")])
    if "secret" in names and len(returns) == 1:
        return ModelResponse(parts=[ToolCallPart("secret", {}, tool_call_id="c2")])
    return ModelResponse(parts=[TextPart(f"offered={names} results={returns}")])


follow = Agent(FunctionModel(_follow_model), name="parity_follow", deps_type=Gate)


@follow.tool
def unlock(ctx: RunContext[Gate]) -> str:
    CALLS["parity_follow.unlock"] += 1
    ctx.deps.unlocked = True
    return "unlocked"


@follow.toolset(id="gated")
def _gated(ctx: RunContext[Gate]) -> FunctionToolset[Gate] | None:
    if not ctx.deps.unlocked:
        return None
    tools = FunctionToolset[Gate]()

    @tools.tool_plain
    def secret() -> str:
        CALLS["parity_follow.secret"] += 1
        return "the secret"

    return tools


keep_lock = Agent(tool_loop_model(1), name="parity_keep_lock", deps_type=Gate)


@keep_lock.tool(name="step")
def _keep_lock(ctx: RunContext[Gate], i: int) -> str:
    CALLS["parity_keep_lock.step"] += 1
    ctx.deps.keep["lock"] = threading.Lock()  # a change that cannot be carried back into the run
    return "kept"


# ---------------------------------------------------------------- a run-time toolset that executes nothing


def _external_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart("ask_user", {"question": "which?"}, tool_call_id="e1")])


external = Agent(FunctionModel(_external_model), name="parity_external", output_type=[str, DeferredToolRequests])


def _external_toolset() -> ExternalToolset[Any]:
    schema = {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}
    return ExternalToolset([ToolDefinition(name="ask_user", parameters_json_schema=schema)])


# ---------------------------------------------------------------- a model that streams

stream = Agent(tool_loop_model(2), name="parity_stream")


@stream.tool_plain(name="step")
def _stream_step(i: int) -> str:
    CALLS["parity_stream.step"] += 1
    return f"r{i}"


# ---------------------------------------------------------------- Logfire spans in code that runs in the container


class Person:
    """A plain class: Logfire checks whether it is an `attrs` class, importing `attrs` on first use."""

    def __init__(self, name: str) -> None:
        self.name = name


@logfire.instrument("greeting for {person}")
def greeting(person: Person) -> str:
    return f"Be brief with {person.name}."


traced = Agent(tool_loop_model(1), name="parity_traced")


@traced.instructions
def _traced_instructions() -> str:
    return greeting(Person("ann"))  # instructions are built in the container (a Temporal workflow, a DBOS workflow...)


@traced.tool_plain(name="step")
def _traced_step(i: int) -> str:
    CALLS["parity_traced.step"] += 1
    return greeting(Person(f"r{i}"))


# ---------------------------------------------------------------- bad run input: refused before anything runs


def _counted_loop(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    CALLS["parity_bad_input.model"] += 1
    return _loop.function(messages, info)  # type: ignore[misc,return-value]


bad_input = Agent(FunctionModel(_counted_loop), name="parity_bad_input")


@bad_input.tool_plain(name="step")
def _counted_step(i: int) -> str:
    CALLS["parity_bad_input.step"] += 1
    return f"r{i}"


class ForeignPart:
    """A part object pydantic-ai does not know, in an otherwise valid request."""

    part_kind = "user-prompt"
    content = "hello"


class Opaque:
    """A value with no JSON form."""


BAD_INPUTS = ("surrogate_prompt", "opaque_prompt_item", "history_of_strings", "foreign_part", "surrogate_in_history")
"""Run arguments that cannot cross the unit boundary, by case name (built by `bad_run_input`)."""


def bad_run_input(case: str, prompt: str) -> tuple[Any, dict[str, Any]]:
    """The `user_prompt` and other run arguments of a bad-input case, built where the run starts."""
    if case == "surrogate_prompt":
        return prompt + "\udc00", {}  # what `surrogateescape` decoding leaves in a string
    if case == "opaque_prompt_item":
        return [prompt, Opaque()], {}
    if case == "history_of_strings":
        return prompt, {"message_history": ["hello", "hi, how can I help?"]}
    if case == "foreign_part":
        return prompt, {"message_history": [ModelRequest(parts=[ForeignPart()])]}  # type: ignore[list-item]
    if case == "surrogate_in_history":
        return prompt, {"message_history": [ModelRequest(parts=[UserPromptPart("caf\udce9")])]}
    raise ValueError(f"unknown bad-input case {case!r}")


# ---------------------------------------------------------------- an event-stream handler that raises


def _counted_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    CALLS["parity_bad_handler.model"] += 1
    return _loop.function(messages, info)  # type: ignore[misc,return-value]


async def _counted_stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[Any]:
    CALLS["parity_bad_handler.model"] += 1
    assert _loop.stream_function is not None
    async for item in _loop.stream_function(messages, info):
        yield item


bad_handler = Agent(FunctionModel(_counted_model, stream_function=_counted_stream), name="parity_bad_handler")


@bad_handler.tool_plain(name="step")
def _handler_step(i: int) -> str:
    CALLS["parity_bad_handler.step"] += 1
    return f"r{i}"


async def _raising_handler(ctx: RunContext[Any], events: AsyncIterable[Any]) -> None:
    async for _ in events:
        raise RuntimeError("the dashboard is down")


HANDLERS: dict[str, Any] = {"parity_bad_handler": _raising_handler}
"""Event-stream handlers given to the wrapper, by scenario agent name (the wrappers of other agents get none)."""


# ---------------------------------------------------------------- structured and native output, validators that retry


class City(BaseModel):
    name: str
    population: int


def _answers(messages: list[ModelMessage], is_answer: Callable[[Any], bool]) -> int:
    """How many answers the model gave before (each one the output validator sent back)."""
    return sum(any(is_answer(p) for p in m.parts) for m in messages if isinstance(m, ModelResponse))


def _census_of(messages: list[ModelMessage]) -> int | None:
    found = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
    found = [p for p in found if p.tool_name == "census"]
    return int(found[0].content) if found else None


def _structured_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    census = _census_of(messages)
    if census is None:
        return ModelResponse(parts=[ToolCallPart("census", {"city": "Paris"}, tool_call_id="census_1")])
    output_tool = info.output_tools[0].name
    answers = _answers(messages, lambda p: isinstance(p, ToolCallPart) and p.tool_name == output_tool)
    population = -1 if not answers else census  # the first answer fails the output validator
    args = {"name": "Paris", "population": population}
    return ModelResponse(parts=[ToolCallPart(output_tool, args, tool_call_id=f"out_{answers}")])


def _native_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    assert info.model_request_parameters.output_mode == "native"
    population = -5 if not _answers(messages, lambda p: isinstance(p, TextPart)) else 2_100_000
    return ModelResponse(parts=[TextPart(json.dumps({"name": "Paris", "population": population}))])


structured = Agent(FunctionModel(_structured_model), name="parity_structured", output_type=City)
native = Agent(
    FunctionModel(_native_model, profile=ModelProfile(supports_json_schema_output=True)),
    name="parity_native",
    output_type=NativeOutput(City),
)


@structured.tool_plain
def census(city: str) -> int:
    CALLS["parity_structured.census"] += 1
    return 2_100_000


def _positive_population(agent: str) -> Callable[[City], City]:
    """An output validator that sends a negative population back to the model (counted per agent)."""

    def validate(city: City) -> City:
        CALLS[f"{agent}.validator"] += 1
        if city.population < 0:
            raise ModelRetry("the population must be positive")
        return city

    return validate


structured.output_validator(_positive_population("parity_structured"))
native.output_validator(_positive_population("parity_native"))


# ---------------------------------------------------------------- a tool that needs approval (deferred, then approved)


def _approve_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    done = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
    if not done:
        return ModelResponse(parts=[ToolCallPart("transfer", {"amount": 5}, tool_call_id="transfer_1")])
    return ModelResponse(parts=[TextPart(f"done: {done[-1].content}")])


approve = Agent(FunctionModel(_approve_model), name="parity_approve", output_type=[str, DeferredToolRequests])


@approve.tool_plain(requires_approval=True)
def transfer(amount: int) -> str:
    CALLS["parity_approve.transfer"] += 1
    return f"sent {amount}"


async def _approval_flow(agent: Any, prompt: str) -> str:
    """Run until the tool asks for approval, approve every call, and run on from the history."""
    first = await agent.run(prompt)
    requests = first.output
    assert isinstance(requests, DeferredToolRequests), requests
    results = DeferredToolResults(approvals={call.tool_call_id: True for call in requests.approvals})
    second = await agent.run(message_history=first.all_messages(), deferred_tool_results=results)
    return f"{[call.tool_name for call in requests.approvals]} -> {second.output}"


# ---------------------------------------------------------------- a tool approved while the run waits (RequestInput)


def _delete_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    done = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
    if not done:
        return ModelResponse(parts=[ToolCallPart("delete", {"path": "a"}, tool_call_id="delete_1")])
    return ModelResponse(parts=[TextPart(f"done: {done[-1].content}")])


async def _ask_in_run(ctx: RunContext[None], requests: DeferredToolRequests, token: str) -> None:
    inbox.ASKED.append((requests, token))


in_run_approval = Agent(
    FunctionModel(_delete_model), name="parity_in_run_approval", capabilities=[RequestInput(_ask_in_run)]
)


@in_run_approval.tool_plain(requires_approval=True)
def delete(path: str) -> str:
    CALLS["parity_in_run_approval.delete"] += 1
    return f"deleted {path}"


# ---------------------------------------------------------------- an MCP server over stdio

MCP_SERVER = Path(__file__).parent.parent / "core" / "mcp_server.py"


def _mcp_plan(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    returns = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
    if not returns:
        return ModelResponse(parts=[ToolCallPart("add", {"a": 2, "b": 3}, tool_call_id="add_1")])
    tools = ",".join(sorted(t.name for t in info.function_tools))
    return ModelResponse(parts=[TextPart(f"{tools}|" + "|".join(f"{p.tool_name}={p.content}" for p in returns))])


mcp = Agent(
    FunctionModel(_mcp_plan),
    name="parity_mcp",
    toolsets=[MCPToolset(MCP_SERVER, id="parity_calc", init_timeout=60, read_timeout=60)],
)

# ---------------------------------------------------------------- K rounds of a model request and a tool call

ROUNDS = 4
rounds = Agent(tool_loop_model(ROUNDS, tool_name="round_step"), name="parity_rounds")


@rounds.tool_plain
def round_step(i: int) -> str:
    return f"r{i}"


FLOWS: dict[str, Callable[[Any, str], Awaitable[str]]] = {"parity_approve": _approval_flow}
"""Scenarios whose `run` mode is more than one `agent.run` (container code, or the caller's code on engines whose
runs are containers of their own)."""


AGENTS: dict[str, Agent[Any, Any]] = {
    a.name: a
    for a in (
        redact,
        grow,
        unserializable,
        limited,
        traced,
        follow,
        keep_lock,
        external,
        stream,
        data_analyst.analyst_agent,
        bad_input,
        bad_handler,
        structured,
        native,
        approve,
        in_run_approval,
        mcp,
        rounds,
    )
    if a.name
}
"""Every scenario agent, by name."""

RUN_KWARGS: dict[str, Callable[[], dict[str, Any]]] = {
    "parity_follow": lambda: {"deps": Gate()},
    "parity_keep_lock": lambda: {"deps": Gate()},
    "parity_external": lambda: {"toolsets": [_external_toolset()]},
    "parity_analyst": lambda: {"deps": data_analyst.AnalystAgentDeps()},
}
"""The run arguments besides the prompt a scenario runs with, made anew for each run (on every engine)."""


def run_kwargs(name: str) -> dict[str, Any]:
    """The run arguments of scenario `name`, besides the prompt."""
    factory = RUN_KWARGS.get(name)
    return {} if factory is None else factory()


# ---------------------------------------------------------------- container code that iterates or streams


async def in_container_code(agent: Any, name: str, prompt: str, mode: str) -> str:
    """What container code (a workflow, a flow) does with a scenario agent, as a string to compare.

    `run`: the output. `iter`: the node types it went through, then the output. `run_stream`: the streamed
    output. `run_stream_events`: the types of the events, without deltas (inside a container a response's parts
    arrive whole), then the output.
    """
    kwargs = run_kwargs(name)
    if mode == "run" and name in FLOWS:
        return await FLOWS[name](agent, prompt)
    if mode.startswith("bad:"):
        user_prompt, bad = bad_run_input(mode.removeprefix("bad:"), prompt)
        return str((await agent.run(user_prompt, **kwargs, **bad)).output)
    if mode == "iter":
        async with agent.iter(prompt, **kwargs) as agent_run:
            nodes = [type(node).__name__ async for node in agent_run]
        return f"{nodes} -> {agent_run.result.output}"
    if mode == "run_stream":
        async with agent.run_stream(prompt, **kwargs) as stream:
            return str(await stream.get_output())
    if mode == "run_stream_events":
        async with agent.run_stream_events(prompt, **kwargs) as events:
            seen = [event async for event in events]
        kinds = [type(event).__name__ for event in seen if not isinstance(event, PartDeltaEvent)]
        return f"{kinds} -> {getattr(seen[-1], 'result').output}"
    return str((await agent.run(prompt, **kwargs)).output)
