"""Tool calls (and, for I/O toolsets, tool listings) as units.

Each *leaf* toolset of the agent (found with pydantic-ai's `visit_and_replace`, so wrappers such as
prefixed, filtered or approval-required toolsets keep working around it) is replaced in the
container by a [`DurableToolset`][durable_agents._toolset.DurableToolset]:

- a *static* leaf (a `FunctionToolset`, including the agent's own `@agent.tool`s) lists its tools
  in the container, since that is pure code; each call runs as a tool unit, unless the tool
  opted out (`None` in the per-tool config), in which case it runs inline;
- an *I/O* leaf (an MCP server, a dynamic `@agent.toolset`, any other toolset) is listed once per
  run in a listing unit, and each call runs as a tool unit that enters the real toolset.

Tool outcomes cross as values: a return value, a retry request (`ModelRetry`, or invalid
arguments), a terminal failure the model sees (`ToolFailed`), a deferral (`CallDeferred`), an
approval request (`ApprovalRequired`), or a fatal error. Only other exceptions reach the engine,
which retries them per the unit's config. Usage a tool records on its `RunContext` (for example a
delegate agent's) is carried back into the run.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, cast

import pydantic
import pydantic_core
from pydantic_ai.exceptions import ApprovalRequired, CallDeferred, ModelRetry, ToolFailed, UserError
from pydantic_ai.messages import InstructionPart
from pydantic_ai.tools import RunContext, ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, FunctionToolset, ToolsetTool, WrapperToolset
from pydantic_core import core_schema

from ._codec import (
    TOOL_DEFS_TA,
    USAGE_TA,
    check_size,
    decode_error,
    decode_tool_return,
    encode_error,
    encode_tool_return,
    is_fatal,
    pack,
    restore_ctx,
    snapshot_ctx,
    unpack,
)
from ._observers import UnitEvent, notify
from ._run import RunState, current_run
from ._units import Unit, UnitKind
from .exceptions import SerializationError

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
        return state.instructions.get(self.toolset_id)

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        state = self._state()
        if self.static or state is None:
            return await self.wrapped.get_tools(ctx)
        return await self._listing(state, ctx)

    async def _listing(self, state: RunState, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        if self.toolset_id in state.listings:
            return state.listings[self.toolset_id]
        assert self.owner is not None and self.list_unit is not None
        payload = pack({"ctx": snapshot_ctx(ctx), "model": state.model_key}, [state.deps_bytes])
        out = unpack(await self.owner.call_unit(self.list_unit, payload, label=self.list_unit.name))
        if out.header["kind"] == "error":
            raise decode_error(self.list_unit.name, out.header)
        defs = TOOL_DEFS_TA.validate_json(out.chunks[0])
        tools = {
            d.name: ToolsetTool(toolset=self, tool_def=d, max_retries=retries, args_validator=_ANY_ARGS)
            for d, retries in zip(defs, out.header["max_retries"], strict=True)
        }
        state.listings[self.toolset_id] = tools
        state.instructions[self.toolset_id] = out.header.get("instructions")
        return tools

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        state = self._state()
        assert self.owner is not None and self.call_unit is not None
        config = self.owner.unit_configs.for_tool(self.toolset_id, name)
        if state is None or (config is None and self.static):
            return await self.wrapped.call_tool(name, tool_args, ctx, tool)
        try:
            header = {
                "tool": name,
                "args": pydantic_core.to_jsonable_python(tool_args),
                "model": state.model_key,
                "ctx": snapshot_ctx(ctx),
            }
            payload = pack(header, [state.deps_bytes])
        except pydantic_core.PydanticSerializationError as exc:
            raise SerializationError(f"The arguments of tool {name!r} cannot be serialized: {exc}") from exc
        label = f"{self.call_unit.name}/{name}"
        out = unpack(await self.owner.call_unit(self.call_unit, payload, label=label, config=config))
        head = out.header
        if head.get("usage"):
            ctx.usage.incr(USAGE_TA.validate_python(head["usage"]))
        kind = head["kind"]
        if kind == "return":
            return decode_tool_return(head["encoding"], out.chunks[0])
        if kind == "retry":
            raise ModelRetry(head["message"])
        if kind == "failed":
            raise ToolFailed(head["message"])
        if kind == "deferred":
            raise CallDeferred(head.get("metadata"), kind=head.get("deferred_kind", "external"))
        if kind == "approval":
            raise ApprovalRequired(head.get("metadata"))
        raise decode_error(label, head)

    def visit_and_replace(
        self, visitor: Callable[[AbstractToolset[Any]], AbstractToolset[Any]]
    ) -> AbstractToolset[Any]:
        return self


@asynccontextmanager
async def _real_toolset(
    leaf: AbstractToolset[Any], ctx: RunContext[Any], static: bool
) -> AsyncGenerator[AbstractToolset[Any]]:
    if static:
        yield leaf
        return
    toolset = await leaf.for_run(ctx)
    toolset = await toolset.for_run_step(ctx)
    async with toolset:
        yield toolset


async def list_unit_body(owner: DurableAgent[Any, Any], leaf: DurableToolset, payload: bytes) -> bytes:
    """The code of a listing unit: list the real toolset's tools (and instructions)."""
    frame = unpack(payload)
    name = leaf.list_unit.name if leaf.list_unit else leaf.toolset_id
    notify(UnitEvent(name, UnitKind.LIST, name, owner.name))
    try:
        model = owner.resolve_unit_model(frame.header["model"])
        ctx = restore_ctx(frame.header["ctx"], owner.deps_codec.decode(frame.chunks[0]), model)
        async with _real_toolset(leaf.wrapped, ctx, static=False) as toolset:
            tools = await toolset.get_tools(ctx)
            instructions = await toolset.get_instructions(ctx)
        defs: list[ToolDefinition] = [t.tool_def for t in tools.values()]
        header: dict[str, Any] = {
            "kind": "tools",
            "max_retries": [t.max_retries for t in tools.values()],
            "instructions": _plain_instructions(instructions),
        }
        return pack(header, [TOOL_DEFS_TA.dump_json(defs)])
    except Exception as exc:
        if is_fatal(exc):
            return pack(encode_error(exc))
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


async def tool_unit_body(owner: DurableAgent[Any, Any], leaf: DurableToolset, payload: bytes) -> bytes:
    """The code of a tool unit: validate the arguments, call the real tool, encode the outcome."""
    frame = unpack(payload)
    header = frame.header
    tool_name: str = header["tool"]
    unit_name = leaf.call_unit.name if leaf.call_unit else leaf.toolset_id
    label = f"{unit_name}/{tool_name}"
    notify(UnitEvent(unit_name, UnitKind.TOOL, label, owner.name))
    usage_before = None
    ctx: RunContext[Any] | None = None
    try:
        model = owner.resolve_unit_model(header["model"])
        ctx = restore_ctx(header["ctx"], owner.deps_codec.decode(frame.chunks[0]), model)
        usage_before = copy.copy(ctx.usage)
        async with _real_toolset(leaf.wrapped, ctx, leaf.static) as toolset:
            tools = await toolset.get_tools(ctx)
            tool = tools.get(tool_name)
            if tool is None:
                raise UserError(f"Tool {tool_name!r} is not offered by toolset {leaf.toolset_id!r} inside the unit.")
            try:
                args = tool.args_validator.validate_python(header["args"])
            except pydantic.ValidationError as exc:
                return _outcome({"kind": "retry", "message": str(exc)}, ctx, usage_before)
            result = await toolset.call_tool(tool_name, args, ctx, tool)
        encoding, data = encode_tool_return(result)
        check_size(len(data), owner.max_payload_bytes, f"The result of tool {tool_name!r} ({label})")
        return _outcome({"kind": "return", "encoding": encoding}, ctx, usage_before, data)
    except ModelRetry as exc:
        return _outcome({"kind": "retry", "message": exc.message}, ctx, usage_before)
    except ToolFailed as exc:
        return _outcome({"kind": "failed", "message": exc.message}, ctx, usage_before)
    except CallDeferred as exc:
        return _outcome({"kind": "deferred", "metadata": exc.metadata, "deferred_kind": exc.kind}, ctx, usage_before)
    except ApprovalRequired as exc:
        return _outcome({"kind": "approval", "metadata": exc.metadata}, ctx, usage_before)
    except Exception as exc:
        if is_fatal(exc):
            return pack(encode_error(exc))
        raise


def _outcome(header: dict[str, Any], ctx: RunContext[Any] | None, before: Any, data: bytes | None = None) -> bytes:
    if ctx is not None and before is not None:
        delta = ctx.usage - before
        if delta.requests or delta.input_tokens or delta.output_tokens or delta.tool_calls:
            header["usage"] = USAGE_TA.dump_python(delta, mode="json")
    return pack(header, [data] if data is not None else [])


def is_static(toolset: AbstractToolset[Any]) -> bool:
    """Whether a leaf toolset lists its tools without I/O (so the container may list it itself)."""
    return isinstance(toolset, FunctionToolset)
