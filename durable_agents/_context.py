"""The projection of a pydantic-ai [`RunContext`][pydantic_ai.tools.RunContext] across the unit boundary.

Inside a unit (a tool call, a toolset listing, an events delivery, a streamed model request) the run context is
rebuilt from a snapshot the container takes just before it calls the unit. This module owns that projection:
every dataclass field of `RunContext` is either *carried*, with the codec that says how it is encoded
([`CARRIED`][durable_agents._context.CARRIED]), or *excluded*, with the reason
([`EXCLUDED`][durable_agents._context.EXCLUDED]).
A test fails when pydantic-ai adds a field that is in neither table, so a new field is decided on instead of
silently keeping its default inside units.

A snapshot is a JSON object keyed by field name. Typed fields are encoded with a cached `TypeAdapter` of their
type. The fields typed `Any` (`metadata`, `validation_context`, `tool_call_metadata`, and `model_settings`, whose
`TypedDict` has no schema pydantic can build and is extended with provider keys) have no type to rebuild them
with, so they must be JSON data that arrives unchanged; anything else raises
[`SerializationError`][durable_agents.exceptions.SerializationError] naming the field, in the container, before
the unit runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import pydantic_core
from pydantic import TypeAdapter
from pydantic_ai import messages as _messages
from pydantic_ai.models import Model
from pydantic_ai.tools import RunContext
from pydantic_ai.usage import RunUsage, UsageLimits

from ._secrets import from_refs, to_refs
from .exceptions import SerializationError

__all__ = ["CARRIED", "EXCLUDED", "FieldCodec", "check_carried", "restore_ctx", "snapshot_ctx"]


class FieldCodec(Protocol):
    """How one carried field is turned into JSON data and back."""

    @property
    def fix(self) -> str:
        """How to make a value of this field serializable, for the error message."""
        ...

    def encode(self, value: Any) -> Any:
        """The value as JSON data; raises `_NotCarriable` (or a pydantic error) when it cannot be."""
        ...

    def decode(self, data: Any) -> Any:
        """The value again, from the JSON data `encode` made."""
        ...


class _NotCarriable(ValueError):
    """A value that would not arrive in a unit as it is in the container."""


@dataclass(frozen=True)
class _Typed:
    """Encoded with a cached `TypeAdapter` of the field's type, and rebuilt by validating its JSON form.

    Validating the JSON form rather than the Python one matters for bytes: `BinaryContent` is base64 in JSON.
    """

    adapter: TypeAdapter[Any]
    fix: str = "pass a value of the field's declared type."
    json_mode: bool = False
    """Validate the JSON form (needed where the type holds bytes: `BinaryContent` is base64 in JSON); plain data
    validates faster as Python."""
    compact: bool = False
    """Leave out attributes at their defaults (usage is mostly zeros, and every unit input carries it). Only for
    types without tagged unions: a union's tag is a default too, and the value would come back as another type."""

    def encode(self, value: Any) -> Any:
        # A float where the type says Decimal (`UsageLimits.cost_limit`) is fine: the decode validates it.
        return self.adapter.dump_python(value, mode="json", warnings=False, exclude_defaults=self.compact)

    def decode(self, data: Any) -> Any:
        if self.json_mode:
            return self.adapter.validate_json(pydantic_core.to_json(data))
        return self.adapter.validate_python(data)


@dataclass(frozen=True)
class _Deadline:
    """An aware datetime as ISO 8601, back in UTC (pydantic would rebuild it with its own `TzInfo`)."""

    fix: str = "pass `timeout=` as a number of seconds."

    def encode(self, value: Any) -> Any:
        return _DEADLINE_TA.dump_python(value, mode="json")

    def decode(self, data: Any) -> Any:
        value = _DEADLINE_TA.validate_python(data)
        return None if value is None else value.astimezone(UTC)


@dataclass(frozen=True)
class _NameSet:
    """A set of names, as a sorted list so equal sets give equal payloads (Prefect keys hash them)."""

    fix: str = "use a set of strings."

    def encode(self, value: Any) -> Any:
        return sorted(_STR_SET_TA.validate_python(value))

    def decode(self, data: Any) -> Any:
        return _STR_SET_TA.validate_python(data)


@dataclass(frozen=True)
class _Data:
    """A field typed `Any`: JSON data (dicts with string keys, lists, strings, numbers, booleans, `None`).

    Anything else is refused instead of converted: a tuple would arrive as a list, a datetime as a string, a
    dataclass as a dict, and the tool inside the unit would see something the same tool outside a unit does not.
    A [`Secret`][durable_agents.Secret] crosses as its reference and arrives as a `Secret` again.
    """

    fix: str

    def encode(self, value: Any) -> Any:
        value = to_refs(value)
        found = _not_json(value, "")
        if found is not None:
            where, what = found
            raise _NotCarriable(f"{where or 'the value'} is {what}")
        return pydantic_core.to_jsonable_python(value)  # a copy, so the snapshot never aliases the run's objects

    def decode(self, data: Any) -> Any:
        return from_refs(data)


_JSON_SCALARS = (str, int, float, bool, type(None))


def _not_json(value: Any, where: str) -> tuple[str, str] | None:
    """Where `value` first stops being JSON data, and what is there instead; `None` if it is JSON data."""
    kind: type[Any] = type(cast(object, value))
    if kind in _JSON_SCALARS:
        if kind is float and not math.isfinite(value):
            return where, f"the float {value!r}, which JSON cannot hold"
        return None
    if kind is list:
        for i, item in enumerate(cast(list[Any], value)):
            found = _not_json(item, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    if kind is dict:
        for key, item in cast(dict[Any, Any], value).items():
            if type(key) is not str:
                return where, f"a dict with a {type(key).__name__} key {key!r}, which would arrive as a string"
            found = _not_json(item, f"{where}[{key!r}]")
            if found is not None:
                return found
        return None
    arrives = _ARRIVES_AS.get(kind)
    if arrives is not None:
        return where, f"a {kind.__qualname__}, which would arrive as {arrives}"
    return where, f"a {kind.__qualname__}, which is not JSON data"


_ARRIVES_AS: Mapping[type, str] = {tuple: "a list", set: "a list", frozenset: "a list", datetime: "a string"}


_STR_SET_TA: TypeAdapter[set[str]] = TypeAdapter(set[str])
_DEADLINE_TA: TypeAdapter[datetime | None] = TypeAdapter(datetime | None)


def _typed(tp: Any) -> _Typed:
    return _Typed(TypeAdapter(tp))


_STR_OR_NONE = _typed(str | None)
_INT = _typed(int)
_BOOL = _typed(bool)

CARRIED: Mapping[str, FieldCodec] = {
    # The run's identity and position.
    "run_id": _STR_OR_NONE,
    "conversation_id": _STR_OR_NONE,
    "run_step": _INT,
    "_model_id": _STR_OR_NONE,  # backs the public `ctx.model_id`
    # The tool call the unit runs.
    "tool_call_id": _STR_OR_NONE,
    "tool_name": _STR_OR_NONE,
    "retries": _typed(dict[str, int]),
    "retry": _INT,
    "max_retries": _INT,
    "tool_call_approved": _BOOL,
    "tool_call_metadata": _Data("keep the values of `DeferredToolResults.metadata` plain JSON data."),
    "partial_output": _BOOL,
    # Budgets: a delegate agent run from a tool with `usage=ctx.usage, usage_limits=ctx.usage_limits` must be
    # limited inside a unit as it is outside one.
    "usage": _Typed(TypeAdapter(RunUsage), compact=True),
    "usage_limits": _Typed(TypeAdapter(UsageLimits | None), compact=True),
    "deadline": _Deadline(),  # absolute and timezone-aware, so `remaining_time()` works in the unit
    # What the run was asked and how.
    # Any sequence of content arrives as a list.
    "prompt": _Typed(TypeAdapter(str | list[_messages.UserContent] | None), json_mode=True),
    "metadata": _Data(
        "put plain values in `metadata=` (ids, names, numbers) and keep objects out; "
        "pass dates as ISO strings and tuples as lists."
    ),
    "model_settings": _Data(
        "use plain values in model_settings (for example seconds as a number for `timeout`, not an `httpx.Timeout`)."
    ),
    "validation_context": _Data(
        "make the agent's `validation_context` plain JSON data (for example a dict of settings) and build richer "
        "objects from it inside the validators."
    ),
    # Tracing flags: plain data a toolset that opens its own spans may read.
    "trace_include_content": _BOOL,
    "instrumentation_version": _INT,
    # Deferred tools and capabilities, derived from the history: without a tool manager in the unit,
    # `available_tool_names` answers from `discovered_tool_names`.
    "discovered_tool_names": _NameSet(),
    "loaded_capability_ids": _NameSet(),
    "capability_active": _typed(bool | None),
    # The prefix / rename layers a toolset listing passes through, so a listing unit applies the same names
    # to `retries` as the container's listing.
    "_tool_name_path": _typed(tuple[str | dict[str, str], ...]),
}
"""The fields a unit's run context gets from the container, each with its codec."""

EXCLUDED: Mapping[str, str] = {
    "deps": "its own chunk, encoded once per run with the agent's deps_type (DepsCodec)",
    "model": "the unit resolves its own model from the run's model key",
    "agent": "a live object; the unit's code runs inside the durable agent that owns it",
    "messages": "container-only: carrying it would make every unit input grow with the conversation",
    "tracer": "process-local; a unit has no span of the run to attach to",
    "workspace": "a live handle (sandbox, filesystem); a unit gets the placeholder that explains how to attach one",
    "pending_messages": "the run's live queue; a message enqueued in a unit would be lost, so `enqueue` raises there",
    "tool_manager": "live run state (the step's toolsets and hooks), it stays in the container",
    "realtime_session": "a live connection; realtime sessions do not run durably",
    "root_capability": "live capability objects (hooks, toolsets, callables) run in the container",
    "capabilities": "live capability objects (hooks, toolsets, callables) run in the container",
    "_capability": "the capability whose hook is dispatched: hooks run in the container",
    "_anchored_evidence": "widens answers computed from `capabilities` and the tool manager, which do not cross",
    "_dispatched_tool_name": "the tool manager's name for the call, read by `emit`, which raises in a unit",
    "_cancellation": "holds a live task of the container; `cancel` raises in a unit",
    "_event_stream_buffer": "the run's live event buffer; `emit` raises in a unit instead of dropping the event",
    "_pending_immediate_dispatches": "keyed by object ids of the container process",
    "_event_stream_replacements": "keyed by object ids of the container process",
    "_durable_operations": "pydantic-ai's own durable_exec dispatchers, rebuilt per run; not used by this library",
    "_run_capabilities_by_id": "pydantic-ai's own durable_exec recovery state; not used by this library",
    "_run_held_toolsets": "live toolsets the run holds entered; a unit enters its own",
    "_mcp_tool_defs_cache": "pydantic-ai's own durable_exec MCP cache, rebuilt per run; listing units replace it",
}
"""The fields that keep their default inside a unit, each with the reason."""


def snapshot_ctx(ctx: RunContext[Any]) -> dict[str, Any]:
    """The JSON-able snapshot of a run context, without deps (they travel as a chunk of their own).

    Raises:
        SerializationError: A carried field holds a value that cannot cross into a unit unchanged.
    """
    snap: dict[str, Any] = {}
    for name, codec in CARRIED.items():
        value = getattr(ctx, name)
        raw = _RAW_DEFAULTS.get(name, _NO_DEFAULT)
        if raw is not _NO_DEFAULT and type(value) is type(raw) and value == raw:
            continue  # at its default (most fields, in most units): nothing to encode
        encoded = _encode(name, codec, value)
        # A field at its default is left out (`restore_ctx` gives it the default again): every unit input carries this.
        if name not in _DEFAULTS or _DEFAULTS[name] != encoded:
            snap[name] = encoded
    return snap


def _raw_defaults() -> dict[str, Any]:
    """The default of every carried field that has one, as the field holds it."""
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(RunContext):
        if f.name not in CARRIED:
            continue
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return defaults


def _encoded_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for name, default in raw.items():
        with contextlib.suppress(ValueError, TypeError):
            defaults[name] = CARRIED[name].encode(default)
    return defaults


def check_carried(name: str, value: Any) -> None:
    """Refuse a value that cannot be carried as the field `name`, before the run's first unit.

    Raises:
        SerializationError: `value` cannot cross into a unit unchanged.
    """
    _encode(name, CARRIED[name], value)


def restore_ctx(snap: Mapping[str, Any], deps: Any, model: Model) -> RunContext[Any]:
    """Rebuild a run context inside a unit from a snapshot; a field the snapshot lacks keeps its default."""
    fields = {name: codec.decode(snap[name]) for name, codec in CARRIED.items() if name in snap}
    fields.setdefault("usage", RunUsage())
    return RunContext(deps=deps, model=model, **fields)


_NO_DEFAULT: Any = object()
_RAW_DEFAULTS: dict[str, Any] = _raw_defaults()
"""The default of every carried field that has one: a field equal to it (and of its type) is not encoded."""
_DEFAULTS: dict[str, Any] = _encoded_defaults(_RAW_DEFAULTS)
"""The encoded default of every carried field that has one."""


def _encode(name: str, codec: FieldCodec, value: Any) -> Any:
    try:
        return codec.encode(value)
    except (ValueError, TypeError) as exc:  # `_NotCarriable` and pydantic's errors are ValueErrors
        raise SerializationError(
            f"The run context's `{name}` cannot cross into a unit: {exc}. Units may run in another process, and "
            f"a tool must see there what it sees outside a unit. Fix: {codec.fix}"
        ) from exc
