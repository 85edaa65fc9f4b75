"""Tool calls (and, for I/O toolsets, tool listings) as units.

Each *leaf* toolset of the agent (found with pydantic-ai's `visit_and_replace`, so wrappers such as
prefixed, filtered or approval-required toolsets keep working around it) is replaced in the
container by a [`DurableToolset`][durable_agents._toolset.DurableToolset]:

- a *static* leaf (a `FunctionToolset`, including the agent's own `@agent.tool`s) lists its tools
  in the container, since that is pure code; each call runs as a tool unit, unless the tool
  opted out (`None` in the per-tool config) or runs a sub-agent of the same engine (see
  `_delegation.py`), in which case it runs inline;
- an *I/O* leaf (an MCP server, a dynamic `@agent.toolset`, any other toolset) is listed in a
  listing unit, when pydantic-ai would list it: at every run step for a dynamic toolset (it may
  offer other tools after a step), once per run for the others; each call runs as a tool unit that
  enters the real toolset.

Tool outcomes cross as values: a return value, a retry request (`ModelRetry`, or invalid
arguments), a terminal failure the model sees (`ToolFailed`), a deferral (`CallDeferred`), an
approval request (`ApprovalRequired`), or a fatal error. Only other exceptions reach the engine,
which retries them per the unit's config. Usage a tool records on its `RunContext` (for example a
delegate agent's) is carried back into the run, and so are changes a tool makes to the run's deps (see
[`DepsCodec.apply`][durable_agents._codec.DepsCodec.apply]).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, cast

import pydantic
import pydantic_core
from pydantic import JsonValue
from pydantic_ai.exceptions import ApprovalRequired, CallDeferred, ModelRetry, ToolFailed, UserError
from pydantic_ai.external_events import ExternalEventWaiter, external_event_scope
from pydantic_ai.messages import InstructionPart, ModelResponse, ToolCallPart
from pydantic_ai.tools import RunContext
from pydantic_ai.toolsets import AbstractToolset, DynamicToolset, FunctionToolset, ToolsetTool, WrapperToolset
from pydantic_ai.usage import RunUsage
from pydantic_core import core_schema

from ._approvals import check_bound_approval
from ._codec import USAGE_TA, return_outcome, return_value
from ._context import restore_ctx, snapshot_ctx
from ._errors import error_outcome, rebuild_error
from ._frames import (
    ApprovalOutcome,
    DeferredOutcome,
    ErrorOutcome,
    FailedOutcome,
    ListInput,
    Outcome,
    RetryOutcome,
    ReturnOutcome,
    ToolInput,
    ToolsOutcome,
    decode_input,
    decode_outcome,
    encode,
)
from ._observers import UnitEvent
from ._policy import is_fatal
from ._run import RunState, current_run, traceparent_of
from ._telemetry import begin_unit
from ._units import Unit, UnitKind
from .exceptions import ConfigurationError, PayloadTooLargeError, ProtocolError, SerializationError, WaitInUnitError

if TYPE_CHECKING:
    from ._agent import DurableAgent

__all__ = ["DurableToolset", "list_unit_body", "tool_unit_body"]

_ANY_ARGS = pydantic_core.SchemaValidator(core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema()))


@dataclass
class DurableToolset(WrapperToolset[Any]):
    """The container-side stand-in for one leaf toolset."""

    owner: DurableAgent[Any, Any] | None = None
    toolset_id: str = ""
    static: bool = True
    per_step: bool = False
    """Listed again at every run step (dynamic toolsets), instead of once per run."""
    call_unit: Unit | None = None
    list_unit: Unit | None = None

    @property
    def id(self) -> str | None:
        return self.wrapped.id

    def _state(self) -> RunState | None:
        return None if self.owner is None else current_run(self.owner.name)

    async def for_run(self, ctx: RunContext[Any]) -> AbstractToolset[Any]:
        if not self.static and self._state() is not None:
            return self  # the real toolset is built inside the units
        return await super().for_run(ctx)

    async def for_run_step(self, ctx: RunContext[Any]) -> AbstractToolset[Any]:
        if not self.static and self._state() is not None:
            return self
        return await super().for_run_step(ctx)

    async def __aenter__(self) -> Self:
        if self.static or self._state() is None:
            await self.wrapped.__aenter__()
            self._entered = True
        return self

    async def __aexit__(self, *args: Any) -> bool | None:
        if getattr(self, "_entered", False):
            self._entered = False
            return await self.wrapped.__aexit__(*args)
        return None

    async def get_instructions(
        self, ctx: RunContext[Any]
    ) -> str | InstructionPart | Sequence[str | InstructionPart] | None:
        state = self._state()
        if self.static or state is None:
            return await super().get_instructions(ctx)
        await self._listing(state, ctx)
        return state.instructions.get((self.toolset_id, ctx.run_step if self.per_step else -1))

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        state = self._state()
        if self.static or state is None:
            return await self.wrapped.get_tools(ctx)
        return await self._listing(state, ctx)

    async def _listing(self, state: RunState, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        # A toolset that pydantic-ai re-evaluates every run step (a dynamic toolset) is listed again every step;
        # others (MCP servers) once per run. Listings are units, so a replay sees the same tools.
        key = (self.toolset_id, ctx.run_step if self.per_step else -1)
        if key in state.listings:
            return state.listings[key]
        assert self.owner is not None and self.list_unit is not None
        deps = _deps_now(self.owner, state, ctx)
        unit_input = ListInput(model=state.model_key, ctx=snapshot_ctx(ctx), deps=deps, trace=traceparent_of(state))
        payload = _encode_input(unit_input, f"the listing of toolset {self.toolset_id!r}")
        outcome = decode_outcome(await self.owner.call_unit(self.list_unit, payload, label=self.list_unit.name))
        if isinstance(outcome, ErrorOutcome):
            raise rebuild_error(self.list_unit.name, outcome)
        if not isinstance(outcome, ToolsOutcome):
            raise ProtocolError(f"The listing unit {self.list_unit.name} answered {outcome.t!r}.")
        tools = {
            d.name: ToolsetTool(toolset=self, tool_def=d, max_retries=retries, args_validator=_ANY_ARGS)
            for d, retries in zip(outcome.tools, outcome.max_retries, strict=True)
        }
        state.listings[key] = tools
        state.instructions[key] = outcome.instructions
        return tools

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        state = self._state()
        assert self.owner is not None and self.call_unit is not None
        config = self.owner.unit_configs.for_tool(self.toolset_id, name)
        check_bound_approval(ctx)
        if state is None:
            return await self.wrapped.call_tool(name, tool_args, ctx, tool)
        if self.static and (config is None or self.owner.delegates(self.wrapped, name)):
            return await self.owner.call_inline_tool(name, self.wrapped.call_tool(name, tool_args, ctx, tool))
        label = f"{self.call_unit.name}/{name}"
        deps = _deps_now(self.owner, state, ctx)
        args = _model_args(ctx, tool_args)
        if ctx.tool_call_approved:
            args = _approved_args(ctx, tool, args, tool_args)
        unit_input = ToolInput(
            tool=name,
            args=args,
            model=state.model_key,
            ctx=snapshot_ctx(ctx),
            deps=deps,
            trace=traceparent_of(state),
        )
        payload = _encode_input(unit_input, f"the arguments of tool {name!r}")
        outcome = decode_outcome(await self.owner.call_unit(self.call_unit, payload, label=label, config=config))
        usage = getattr(outcome, "usage", None)
        if usage:
            ctx.usage.incr(USAGE_TA.validate_python(usage))
        changed = getattr(outcome, "deps", None)
        if changed is not None:
            state.deps_json = self.owner.deps_codec.apply(ctx.deps, deps, changed, state.deps_json)
        return _tool_result(label, outcome)

    def visit_and_replace(
        self, visitor: Callable[[AbstractToolset[Any]], AbstractToolset[Any]]
    ) -> AbstractToolset[Any]:
        return self


def _deps_now(owner: DurableAgent[Any, Any], state: RunState, ctx: RunContext[Any]) -> Any:
    """The run's deps as data for a unit, encoded again.

    Container code (a tool run inline, an output validator) may have changed them since the last unit.
    """
    state.deps_json = owner.deps_codec.to_data(ctx.deps)
    return state.deps_json


@asynccontextmanager
async def _real_toolset(
    leaf: AbstractToolset[Any], ctx: RunContext[Any], static: bool, toolset_id: str
) -> AsyncGenerator[AbstractToolset[Any]]:
    if static:
        yield leaf
        return
    toolset = await leaf.for_run(ctx)
    toolset = await toolset.for_run_step(ctx)
    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(toolset)
        except Exception as exc:
            failure = _server_start_failure(toolset, toolset_id, exc)
            if failure is None:
                raise
            raise failure from exc
        yield toolset


def _server_start_failure(toolset: AbstractToolset[Any], toolset_id: str, exc: Exception) -> ConfigurationError | None:
    """A fatal error for a server process on this worker that cannot start, or does not speak MCP; else `None`.

    A command that is missing or not executable, and a process that answers the MCP handshake with something
    else (or not within its `init_timeout`), fail the same way on every attempt. A server reached over the network
    is not judged here: failing to reach it may heal, so its errors keep the unit's retry policy.
    """
    transport = getattr(getattr(toolset, "client", None), "transport", None)
    if not any(cls.__name__ == "StdioTransport" for cls in type(transport).__mro__):
        return None
    command = " ".join([str(getattr(transport, "command", "?")), *map(str, getattr(transport, "args", ()))])
    fix = "Fix: install the server on every worker that runs this agent's units, and check its command and arguments."
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and not isinstance(cause, ConnectionError | TimeoutError):
            return ConfigurationError(
                f"The MCP server of toolset {toolset_id!r} cannot be started: `{command}` failed with "
                f"{type(cause).__name__}: {cause}. {fix}"
            )
        cause = cause.__cause__ or cause.__context__
    return ConfigurationError(
        f"The MCP server of toolset {toolset_id!r} (`{command}`) started but did not complete the MCP handshake: "
        f"{type(exc).__name__}: {exc}. A stdio server must write only JSON-RPC to stdout (logs go to stderr) and "
        f"answer within its init_timeout. {fix}"
    )


def _model_args(ctx: RunContext[Any], validated: dict[str, Any]) -> dict[str, Any]:
    """The arguments as the model sent them, which the unit validates (once) into what the tool gets.

    The container has validated them already (so a bad call becomes the same retry prompt as in the bare agent),
    but validated values need not be JSON, and validating their JSON form again would apply a transforming
    validator twice. Falls back to the validated arguments when the call is not found in the history.
    """
    for message in reversed(ctx.messages):
        if isinstance(message, ModelResponse):
            for part in message.parts:
                if isinstance(part, ToolCallPart) and part.tool_call_id == ctx.tool_call_id:
                    try:
                        return part.args_as_dict()
                    except ValueError:
                        return validated
            break
    return validated


def _approved_args(
    ctx: RunContext[Any], tool: ToolsetTool[Any], model_args: dict[str, Any], validated: dict[str, Any]
) -> dict[str, Any]:
    """The arguments an approved call runs with: the approver's `override_args` when given, else the model's.

    pydantic-ai validates the override instead of the model's arguments; the unit gets its JSON form then.
    """
    try:
        as_the_model_sent = tool.args_validator.validate_python(model_args, context=ctx.validation_context)
    except pydantic.ValidationError:
        as_the_model_sent = None
    if as_the_model_sent == validated:
        return model_args
    try:
        return pydantic_core.to_jsonable_python(validated)
    except pydantic_core.PydanticSerializationError:
        return validated  # refused with the fix when the unit input is encoded


def _encode_input(unit_input: ToolInput | ListInput, what: str) -> bytes:
    try:
        return encode(unit_input)
    except pydantic_core.PydanticSerializationError as exc:
        raise SerializationError(
            f"{what[0].upper()}{what[1:]} cannot be serialized: {exc}. Units may run in another process, so what "
            "crosses into them must be data. Fix: pass plain values (numbers, strings, dicts, dataclasses)."
        ) from exc


def _tool_result(label: str, outcome: Outcome) -> Any:
    """Return the tool's value, or raise what the tool raised, as the bare agent would see it."""
    match outcome:
        case ReturnOutcome():
            return return_value(outcome)
        case RetryOutcome():
            raise ModelRetry(outcome.message)
        case FailedOutcome():
            raise ToolFailed(outcome.message)
        case DeferredOutcome():
            raise CallDeferred(outcome.metadata, kind=outcome.kind)
        case ApprovalOutcome():
            raise ApprovalRequired(outcome.metadata)
        case ErrorOutcome():
            raise rebuild_error(label, outcome)
        case _:
            raise ProtocolError(f"The tool unit {label} answered {outcome.t!r}.")


async def list_unit_body(owner: DurableAgent[Any, Any], leaf: DurableToolset, payload: bytes) -> bytes:
    """The code of a listing unit: list the real toolset's tools (and instructions)."""
    name = leaf.list_unit.name if leaf.list_unit else leaf.toolset_id
    try:
        unit_input = decode_input(payload)
        begin_unit(UnitEvent(name, UnitKind.LIST, name, owner.name), getattr(unit_input, "trace", None))
        if not isinstance(unit_input, ListInput):
            raise ProtocolError(f"The listing unit {name} got a {unit_input.t!r} input.")
        model = owner.context_model(unit_input.model)
        ctx = restore_ctx(unit_input.ctx, owner.deps_codec.decode_value(unit_input.deps), model)
        async with _real_toolset(leaf.wrapped, ctx, False, leaf.toolset_id) as toolset:
            tools = await toolset.get_tools(ctx)
            instructions = await toolset.get_instructions(ctx)
        return _encode_outcome(
            ToolsOutcome(
                tools=[t.tool_def for t in tools.values()],
                max_retries=[t.max_retries for t in tools.values()],
                instructions=_plain_instructions(instructions),
            ),
            f"The tool list of {name}",
            owner.max_payload_bytes,
        )
    except Exception as exc:
        if is_fatal(exc):
            return encode(error_outcome(exc))
        raise


def _plain_instructions(instructions: object) -> str | None:
    if instructions is None:
        return None
    if isinstance(instructions, str):
        return instructions
    if isinstance(instructions, InstructionPart):
        return instructions.content
    if isinstance(instructions, list | tuple):
        parts = [_plain_instructions(i) for i in cast(Sequence[object], instructions)]
        return "\n\n".join(p for p in parts if p) or None
    return str(instructions)


def _encode_outcome(outcome: Outcome, what: str, limit: int | None) -> bytes:
    """Encode a unit's outcome; a value that cannot be serialized, or is too large, is a fatal error."""
    try:
        data = encode(outcome)
    except (pydantic_core.PydanticSerializationError, UnicodeError) as exc:
        raise SerializationError(
            f"{what} cannot be serialized: {exc}. Units may run in another process, so their results must be data. "
            "Fix: return plain values (strings, numbers, dicts, lists, dataclasses, pydantic models)."
        ) from exc
    if limit is not None and len(data) > limit:
        raise PayloadTooLargeError(what, len(data), limit)
    return data


async def tool_unit_body(owner: DurableAgent[Any, Any], leaf: DurableToolset, payload: bytes) -> bytes:
    """The code of a tool unit: validate the arguments, call the real tool, encode the outcome.

    Every outcome but an error carries the usage the tool recorded and, if the tool changed the run's deps, the
    deps after it, which the container applies to the run's deps (so the next tool sees the change, as in a bare
    run).
    """
    unit_name = leaf.call_unit.name if leaf.call_unit else leaf.toolset_id
    try:
        unit_input = decode_input(payload)
    except ProtocolError as exc:
        return encode(error_outcome(exc))
    tool_name = unit_input.tool if isinstance(unit_input, ToolInput) else "?"
    label = f"{unit_name}/{tool_name}"
    begin_unit(UnitEvent(unit_name, UnitKind.TOOL, label, owner.name), getattr(unit_input, "trace", None))
    try:
        if not isinstance(unit_input, ToolInput):
            raise ProtocolError(f"The tool unit {unit_name} got a {unit_input.t!r} input.")
        model = owner.context_model(unit_input.model)
        ctx = restore_ctx(unit_input.ctx, owner.deps_codec.decode_value(unit_input.deps), model)
        usage_before = copy.copy(ctx.usage)
        outcome: ToolOutcome
        try:
            outcome = await _call_tool(leaf, ctx, unit_input)
        except ModelRetry as exc:
            outcome = RetryOutcome(message=exc.message)
        except ToolFailed as exc:
            outcome = FailedOutcome(message=exc.message)
        except CallDeferred as exc:
            outcome = DeferredOutcome(metadata=exc.metadata, kind=exc.kind)
        except ApprovalRequired as exc:
            outcome = ApprovalOutcome(metadata=exc.metadata)
        outcome.usage = _usage(ctx, usage_before)
        outcome.deps = owner.deps_codec.changed(unit_input.deps, ctx.deps, f"Tool {tool_name!r} ({label})")
        return _encode_outcome(outcome, f"{_WHAT[outcome.t]} of tool {tool_name!r} ({label})", owner.max_payload_bytes)
    except Exception as exc:
        if is_fatal(exc):
            return encode(error_outcome(exc))
        raise


class _RefusingWaiter(ExternalEventWaiter):
    """The waiter inside a tool unit: a unit cannot wait durably, so a wait there fails the run with the fix."""

    def __init__(self, tool_name: str) -> None:
        self._tool_name = tool_name

    async def wait(self, name: str, *, ask: Any, timeout: Any) -> JsonValue:
        raise WaitInUnitError(
            f"Tool {self._tool_name!r} called `wait_for_external_event({name!r})` inside its tool unit, where no "
            "wait can be recorded (the engine records only the unit's result, and may run it in another process). "
            f"Fix: run the tool inline in the container: give it `None` in the wrapper's per-tool configs "
            f"(`{{{self._tool_name!r}: None}}` as `tool_step_configs` on DBOS, `tool_activity_config` on Temporal, "
            "`tool_unit_configs` on the local engine), or mark it `requires_approval=True` and let the "
            "`RequestInput` capability wait for the decision."
        )


async def _call_tool(leaf: DurableToolset, ctx: RunContext[Any], unit_input: ToolInput) -> ToolOutcome:
    with external_event_scope(_RefusingWaiter(unit_input.tool)):
        return await _call_real_tool(leaf, ctx, unit_input)


async def _call_real_tool(leaf: DurableToolset, ctx: RunContext[Any], unit_input: ToolInput) -> ToolOutcome:
    async with _real_toolset(leaf.wrapped, ctx, leaf.static, leaf.toolset_id) as toolset:
        tools = await toolset.get_tools(ctx)
        tool = tools.get(unit_input.tool)
        if tool is None:
            raise UserError(f"Tool {unit_input.tool!r} is not offered by toolset {leaf.toolset_id!r} inside the unit.")
        try:
            args = tool.args_validator.validate_python(unit_input.args, context=ctx.validation_context)
        except pydantic.ValidationError as exc:
            return RetryOutcome(message=str(exc))
        return return_outcome(await toolset.call_tool(unit_input.tool, args, ctx, tool))


ToolOutcome = ReturnOutcome | RetryOutcome | FailedOutcome | DeferredOutcome | ApprovalOutcome

_WHAT = {
    "return": "The result",
    "retry": "The retry request",
    "failed": "The failure",
    "deferred": "The deferral metadata",
    "approval": "The approval metadata",
}
"""What of a tool's outcome an encoding error is about (besides the deps, which are checked before)."""


def _usage(ctx: RunContext[Any], before: RunUsage) -> dict[str, Any] | None:
    """The usage a tool recorded on its run context (e.g. a delegate agent's), as JSON data, if any."""
    delta = ctx.usage - before
    if delta.requests or delta.input_tokens or delta.output_tokens or delta.tool_calls:
        return USAGE_TA.dump_python(delta, mode="json")
    return None


def is_static(toolset: AbstractToolset[Any]) -> bool:
    """Whether a leaf toolset lists its tools without I/O (so the container may list it itself)."""
    return isinstance(toolset, FunctionToolset)


def is_per_step(toolset: AbstractToolset[Any]) -> bool:
    """Whether pydantic-ai re-evaluates a leaf toolset at every run step (a dynamic toolset with `per_run_step`)."""
    return isinstance(toolset, DynamicToolset) and bool(getattr(toolset, "per_run_step", True))
