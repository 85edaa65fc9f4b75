"""Sub-agents: a durable agent run from a tool of another durable agent of the same engine.

pydantic-ai's delegation pattern is a tool that runs another agent
(`await search_agent.run(..., deps=ctx.deps, usage=ctx.usage)`). When both agents are durable agents of the same
engine, the delegate's run is a child container of the parent's (a Temporal child workflow, a DBOS child workflow, a
Prefect subflow, a nested run on the local engine), with units of its own, journaled on their own.

For that the delegating tool must run in the parent's container rather than in a unit: a Temporal activity cannot
start a workflow, nor a DBOS step call one. This module finds such tools: a function tool whose code refers to a
durable agent of the same engine (through its globals, closure or default arguments, and through the plain functions
it calls in the same way) and calls one of its run methods (`run`, `run_sync`, `iter`, `run_stream`,
`run_stream_events`) runs inline in the container; a tool that only reads an agent (its name, its units) does not.
A tool that reaches its delegate some other way (an attribute of its deps, a registry) can be marked by hand with
its per-tool config `None`.

It also carries usage across the container boundary: the `usage=` a delegate gets is copied into the child
container, and the child's requests and tokens are added into the caller's live `RunUsage` when the child returns, so
they are counted once (also when the parent's container is replayed, since its usage is rebuilt from the start).
"""

from __future__ import annotations

import copy
import functools
import types
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import pydantic_core
from pydantic import PydanticSchemaGenerationError, TypeAdapter
from pydantic_ai._agent_graph import GraphAgentState  # pyright: ignore[reportPrivateUsage]
from pydantic_ai.messages import ModelMessagesTypeAdapter
from pydantic_ai.run import AgentRunResult
from pydantic_ai.usage import RunUsage

from ._codec import USAGE_TA
from .exceptions import ProtocolError

if TYPE_CHECKING:
    from ._agent import DurableAgent

__all__ = ["decode_result", "encode_result", "referenced_agents", "with_usage_back"]

_MAX_DEPTH = 3
"""How many levels of plain helper functions are looked through for a delegate."""

_RUN_METHODS = frozenset({"run", "run_sync", "iter", "run_stream", "run_stream_events"})
"""The methods whose call, on a durable agent a function refers to, makes it a delegation."""


def referenced_agents(function: Any, engine: str) -> list[DurableAgent[Any, Any]]:
    """The durable agents of `engine` that `function`'s code refers to, directly or through plain helpers.

    Looks at the names the code loads from its globals (also in nested functions and lambdas), its closure cells and
    its default arguments; a plain function found there is looked through too, up to a few levels.
    """
    from ._agent import DurableAgent

    found: list[DurableAgent[Any, Any]] = []
    seen: set[int] = set()

    def is_agent(value: Any) -> bool:
        try:
            return isinstance(value, DurableAgent)
        except Exception:  # a proxy that cannot answer (Temporal's sandbox restricts some modules' objects)
            return False

    def visit(value: Any, depth: int) -> None:
        if id(value) in seen or depth >= _MAX_DEPTH:
            return
        seen.add(id(value))
        runs_agents = _names_run_method(value)
        for inner in _referenced_values(value):
            if is_agent(inner):
                agent = cast(DurableAgent[Any, Any], inner)
                if runs_agents and agent.engine == engine and agent not in found:
                    found.append(agent)
            else:
                visit(inner, depth + 1)

    visit(function, -1)
    return found


def _names_run_method(value: Any) -> bool:
    """Whether a function's code (nested functions included) names a run method of an agent."""
    function = _plain_function(value)
    return function is not None and not _RUN_METHODS.isdisjoint(_global_names(function.__code__))


def _plain_function(value: Any) -> types.FunctionType | None:
    try:
        function = getattr(value, "__func__", value)  # a bound method: its function
        function = getattr(function, "__wrapped__", function)  # a decorated function: the one it wraps
        return function if isinstance(function, types.FunctionType) else None
    except Exception:  # a proxy that refuses attribute access (Temporal's sandbox restricts `threading` objects)
        return None


def _referenced_values(value: Any) -> Iterator[Any]:
    function = _plain_function(value)
    if function is None:
        return
    code_globals = function.__globals__
    for name in _global_names(function.__code__):
        if name in code_globals:
            yield code_globals[name]
    for cell in function.__closure__ or ():
        try:
            yield cell.cell_contents
        except ValueError:  # an empty cell
            continue
    yield from function.__defaults__ or ()
    yield from (function.__kwdefaults__ or {}).values()


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


async def with_usage_back(
    kwargs: dict[str, Any], start: Callable[[dict[str, Any]], Awaitable[AgentRunResult[Any]]]
) -> AgentRunResult[Any]:
    """Start a run in a child container with a copy of its `usage=`, and add the child's usage into the original.

    The child gets the caller's usage so far, so its `UsageLimits` see the whole budget, as in a bare run; what the
    child used is added to the caller's `RunUsage` object once the child returns.
    """
    usage = kwargs.get("usage")
    if not isinstance(usage, RunUsage):
        return await start(kwargs)
    sent = copy.deepcopy(usage)
    result = await start({**kwargs, "usage": copy.deepcopy(usage)})
    usage.incr(result.usage - sent)
    return result


def encode_result(result: AgentRunResult[Any]) -> str:
    """A child container's result as a JSON frame, for engines whose containers return data (Temporal).

    The output goes as its JSON form; [`decode_result`][durable_agents._delegation.decode_result] validates it back
    with the delegate's output type where pydantic can (plain types, dataclasses, pydantic models).
    """
    frame = {
        "output": pydantic_core.to_jsonable_python(result.output),
        "output_tool_name": result._output_tool_name,  # pyright: ignore[reportPrivateUsage]
        "messages": pydantic_core.from_json(ModelMessagesTypeAdapter.dump_json(result.all_messages())),
        "new_message_index": result._new_message_index,  # pyright: ignore[reportPrivateUsage]
        "usage": USAGE_TA.dump_python(result.usage, mode="json"),
        "run_id": result.run_id,
    }
    return pydantic_core.to_json(frame).decode()


def decode_result(output_type: Any, frame: str) -> AgentRunResult[Any]:
    """The `AgentRunResult` a child container's result frame holds.

    Raises:
        ProtocolError: The frame is damaged.
    """
    try:
        data = pydantic_core.from_json(frame)
        messages = ModelMessagesTypeAdapter.validate_python(data["messages"])
        usage = USAGE_TA.validate_python(data["usage"])
        output = data["output"]
        adapter = _output_adapter(output_type)
        if adapter is not None:
            output = adapter.validate_python(output)
        state = GraphAgentState(message_history=messages, usage=usage, run_id=data["run_id"])
        return AgentRunResult(
            output,
            _output_tool_name=data["output_tool_name"],
            _state=state,
            _new_message_index=data["new_message_index"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"The result of a sub-agent's child container could not be read: {exc!r}.") from exc


@functools.cache
def _output_adapter(output_type: Any) -> TypeAdapter[Any] | None:
    """A `TypeAdapter` of an agent's output type, or `None` when it is an output spec pydantic has no schema for."""
    try:
        return TypeAdapter(output_type)
    except (PydanticSchemaGenerationError, TypeError, ValueError):
        return None
