"""Serialization across the unit boundary, in one place for every engine.

A unit payload is a *frame*: a small JSON header, then zero or more binary chunks, joined by NUL
bytes. JSON never contains a raw NUL, so splitting is safe, and chunks (messages, deps, tool
results) are embedded as their own JSON bytes without being escaped into a string, encoded once
and hashed as they are.

Messages and events use pydantic-ai's own types through `TypeAdapter`s that are built once per
process and cached, never per payload (building one costs far more than validating with it).
Deps use the agent's `deps_type`. A [`RunContext`][pydantic_ai.tools.RunContext] crosses as a
snapshot of an explicit field list, see [`CTX_FIELDS`][durable_agents._codec.CTX_FIELDS].
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pydantic_core
from pydantic import PydanticSchemaGenerationError, TypeAdapter
from pydantic_ai import messages as _messages
from pydantic_ai.exceptions import UnexpectedModelBehavior, UserError
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.tools import RunContext, ToolDefinition
from pydantic_ai.usage import RunUsage

from .exceptions import DurableAgentsError, PayloadTooLargeError, UnitFailedError, UnserializableDepsError

__all__ = [
    "CTX_FIELDS",
    "DepsCodec",
    "Frame",
    "check_size",
    "decode_error",
    "encode_error",
    "is_fatal",
    "pack",
    "unpack",
]

_SEP = b"\x00"

MESSAGE_TA: TypeAdapter[_messages.ModelMessage] = TypeAdapter(_messages.ModelMessage)
RESPONSE_TA: TypeAdapter[_messages.ModelResponse] = TypeAdapter(_messages.ModelResponse)
PARAMS_TA: TypeAdapter[ModelRequestParameters] = TypeAdapter(ModelRequestParameters)
EVENTS_TA: TypeAdapter[list[_messages.AgentStreamEvent]] = TypeAdapter(list[_messages.AgentStreamEvent])
USAGE_TA: TypeAdapter[RunUsage] = TypeAdapter(RunUsage)
TOOL_DEFS_TA: TypeAdapter[list[ToolDefinition]] = TypeAdapter(list[ToolDefinition])
TOOL_RETURN_TA: TypeAdapter[_messages.ToolReturn[Any]] = TypeAdapter(_messages.ToolReturn[Any])
USER_CONTENT_TA: TypeAdapter[list[_messages.UserContent]] = TypeAdapter(list[_messages.UserContent])
ANY_TA: TypeAdapter[Any] = TypeAdapter(Any)


@dataclass(frozen=True)
class Frame:
    """A decoded unit payload: a JSON header and binary chunks."""

    header: dict[str, Any]
    chunks: list[bytes]


def pack(header: Mapping[str, Any], chunks: Sequence[bytes] = ()) -> bytes:
    """Encode a frame. Chunks must be JSON documents (they never contain a NUL byte)."""
    return _SEP.join((pydantic_core.to_json(header), *chunks))


def unpack(payload: bytes) -> Frame:
    """Decode a frame made by [`pack`][durable_agents._codec.pack]."""
    head, *chunks = payload.split(_SEP)
    return Frame(cast(dict[str, Any], pydantic_core.from_json(head)), chunks)


def check_size(size: int, limit: int | None, what: str) -> None:
    """Raise [`PayloadTooLargeError`][durable_agents.exceptions.PayloadTooLargeError] if `size` is over `limit`."""
    if limit is not None and size > limit:
        raise PayloadTooLargeError(what, size, limit)


class DepsCodec:
    """Encodes and decodes a run's deps with the agent's `deps_type`."""

    def __init__(self, deps_type: type[Any]) -> None:
        self.deps_type = deps_type
        self._none = deps_type is type(None)
        try:
            self._ta: TypeAdapter[Any] | None = None if self._none else _adapter_for(deps_type)
        except PydanticSchemaGenerationError as exc:
            raise UnserializableDepsError(
                f"The agent's deps_type {_type_name(deps_type)} cannot be serialized: pydantic has no schema for it "
                f"({exc.message.splitlines()[0]}). Units may run in another process, so deps must be data. "
                "Fix: make deps_type a dataclass / pydantic model of plain fields, and keep clients out of deps."
            ) from exc

    def encode(self, deps: Any) -> bytes:
        """Encode deps, or raise [`UnserializableDepsError`][durable_agents.exceptions.UnserializableDepsError]."""
        if self._ta is None:
            if deps is not None:
                raise UnserializableDepsError(
                    f"The agent's deps_type is None but the run got deps of type {type(deps).__name__}. "
                    "Fix: create the agent with `deps_type=...` so the deps can cross the unit boundary."
                )
            return b"null"
        try:
            return self._ta.dump_json(deps)
        except (pydantic_core.PydanticSerializationError, TypeError, ValueError) as exc:
            raise UnserializableDepsError(
                f"The run's deps ({type(deps).__name__}) cannot be serialized with the agent's deps_type "
                f"{_type_name(self.deps_type)}: {exc}. Units may run in another process, so deps must be data. "
                "Fix: make deps a dataclass / pydantic model of plain fields, and keep clients (HTTP, DB) out of "
                "deps: create them inside tools or at module level."
            ) from exc

    def check(self, deps: Any) -> bytes:
        """Encode deps and prove they decode again; used before a run starts."""
        data = self.encode(deps)
        try:
            self.decode(data)
        except Exception as exc:
            raise UnserializableDepsError(
                f"The run's deps ({type(deps).__name__}) serialize but do not deserialize as deps_type "
                f"{_type_name(self.deps_type)}: {exc}. Fix: make every field of deps a type pydantic can validate."
            ) from exc
        return data

    def decode(self, data: bytes) -> Any:
        """Decode deps encoded by [`encode`][durable_agents._codec.DepsCodec.encode]."""
        if self._ta is None:
            return None
        return self._ta.validate_json(data)


@functools.lru_cache(maxsize=256)
def _adapter_for(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__qualname__", repr(tp))


CTX_FIELDS = (
    "run_id",
    "conversation_id",
    "run_step",
    "retries",
    "retry",
    "max_retries",
    "tool_call_id",
    "tool_name",
    "tool_call_approved",
    "tool_call_metadata",
    "metadata",
    "partial_output",
)
"""The `RunContext` fields that cross into a unit, besides `deps`, `usage` and a string `prompt`.

Everything else (notably `messages`, which would make every payload grow with the conversation)
keeps its default inside a unit.
"""


def snapshot_ctx(ctx: RunContext[Any]) -> dict[str, Any]:
    """The JSON-able snapshot of a run context, without deps (they travel as a chunk of their own)."""
    snap: dict[str, Any] = {name: getattr(ctx, name) for name in CTX_FIELDS}
    snap["usage"] = USAGE_TA.dump_python(ctx.usage, mode="json")
    snap["prompt"] = ctx.prompt if isinstance(ctx.prompt, str) else None
    return cast(dict[str, Any], pydantic_core.to_jsonable_python(snap))


def restore_ctx(snap: Mapping[str, Any], deps: Any, model: Model) -> RunContext[Any]:
    """Rebuild a run context inside a unit from a snapshot."""
    fields = {name: snap[name] for name in CTX_FIELDS if name in snap}
    return RunContext(
        deps=deps,
        model=model,
        usage=USAGE_TA.validate_python(snap.get("usage") or {}),
        prompt=snap.get("prompt"),
        **fields,
    )


def encode_tool_return(value: Any) -> tuple[str, bytes]:
    """Encode a tool's return value, keeping pydantic-ai's special return types intact."""
    if isinstance(value, _messages.ToolReturn):
        return "tool_return", TOOL_RETURN_TA.dump_json(cast(_messages.ToolReturn[Any], value))
    if _is_multimodal(value):
        items = cast(Sequence[Any], value) if isinstance(value, list | tuple) else [value]
        return "content", USER_CONTENT_TA.dump_json(list(items))
    return "json", ANY_TA.dump_json(value)


def decode_tool_return(kind: str, data: bytes) -> Any:
    """Decode a value encoded by [`encode_tool_return`][durable_agents._codec.encode_tool_return]."""
    if kind == "tool_return":
        return TOOL_RETURN_TA.validate_json(data)
    if kind == "content":
        items = USER_CONTENT_TA.validate_json(data)
        return items[0] if len(items) == 1 and not isinstance(items[0], str) else items
    return pydantic_core.from_json(data)


_MULTIMODAL = (
    _messages.BinaryContent,
    _messages.ImageUrl,
    _messages.AudioUrl,
    _messages.VideoUrl,
    _messages.DocumentUrl,
)


def _is_multimodal(value: Any) -> bool:
    if isinstance(value, _MULTIMODAL):
        return True
    if isinstance(value, list | tuple):
        items = cast(Sequence[Any], value)
        return any(isinstance(v, _MULTIMODAL) for v in items)
    return False


_FATAL_TYPES: tuple[type[BaseException], ...] = (DurableAgentsError, UserError, UnexpectedModelBehavior)


def is_fatal(exc: BaseException) -> bool:
    """Whether an error raised in a unit must fail the run instead of being retried by the engine."""
    if isinstance(exc, _FATAL_TYPES):
        return True
    status = getattr(exc, "status_code", None)
    # Client errors of a model API (bad request, auth, not found) do not heal on retry; 408/409/429 can.
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 429)


def encode_error(exc: BaseException) -> dict[str, Any]:
    """A fatal unit error as a value, so the engine records it instead of retrying."""
    cls = type(exc)
    attrs = {k: v for k, v in vars(exc).items() if isinstance(v, str | int | float | bool) and not k.startswith("_")}
    return {
        "kind": "error",
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "type": cls.__name__,
        "message": getattr(exc, "message", None) or str(exc),
        "attrs": attrs,
    }


def decode_error(unit: str, err: Mapping[str, Any]) -> BaseException:
    """Turn an error value back into the exception the run raises in the container."""
    module, _, qualname = str(err.get("class", "")).partition(":")
    message = str(err.get("message", ""))
    try:
        cls: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except Exception:
        cls = None
    if isinstance(cls, type) and issubclass(cls, DurableAgentsError):
        exc = cls.__new__(cls)
        DurableAgentsError.__init__(exc, message)
        for key, value in cast(Mapping[str, Any], err.get("attrs") or {}).items():
            setattr(exc, key, value)
        return exc
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__.startswith("pydantic_ai."):
        rebuilt = _rebuild_pydantic_ai_error(cls, message, cast(Mapping[str, Any], err.get("attrs") or {}))
        if rebuilt is not None:
            return rebuilt
    return UnitFailedError(unit, str(err.get("type", "Exception")), message)


def _rebuild_pydantic_ai_error(cls: type[Exception], message: str, attrs: Mapping[str, Any]) -> Exception | None:
    """Rebuild a pydantic-ai error from its constructor's parameters, when its attributes provide them."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return None
    kwargs = {name: attrs[name] for name in params if name in attrs}
    if "message" in params:
        kwargs["message"] = message
    try:
        exc = cls(**kwargs)
    except TypeError:
        return None
    for name, value in attrs.items():
        if name not in kwargs:
            with contextlib.suppress(AttributeError):
                setattr(exc, name, value)
    return exc
