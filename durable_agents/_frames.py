"""The unit wire format: one typed, versioned frame per unit input and per unit outcome.

Every unit takes `bytes` and returns `bytes`; this module owns what those bytes are. A frame is
one JSON object with a version `v` and a type tag `t`, validated by one cached `TypeAdapter` per
direction (inputs, outcomes), so messages, events and binary content keep pydantic-ai's own JSON
forms and an engine UI that shows JSON shows a readable payload.

- model request: input [`ModelInput`][durable_agents._frames.ModelInput], or a
  [`SegmentInput`][durable_agents._frames.SegmentInput] (a piece of a resent history); outcomes
  `ResponseOutcome`, `MissOutcome`, `StagedOutcome`, `ErrorOutcome`;
- tool call: input [`ToolInput`][durable_agents._frames.ToolInput]; outcomes `ReturnOutcome`,
  `RetryOutcome`, `FailedOutcome`, `DeferredOutcome`, `ApprovalOutcome`, `ErrorOutcome`; each but the
  error carries the usage the tool recorded and, when the tool changed the run's deps, the deps after it;
- toolset listing: input [`ListInput`][durable_agents._frames.ListInput]; outcomes `ToolsOutcome`,
  `ErrorOutcome`;
- events delivery: input [`EventsInput`][durable_agents._frames.EventsInput]; outcomes
  `DoneOutcome`, `ErrorOutcome`.

**Versions.** [`PROTOCOL_VERSION`][durable_agents._frames.PROTOCOL_VERSION] is written; every
version in [`READABLE_VERSIONS`][durable_agents._frames.READABLE_VERSIONS] is read. Version 0 is
the unversioned format of December 2026 (a JSON header, then NUL-separated JSON chunks); it is
converted to the current types on decoding, so a library upgrade with runs in flight reads their
payloads, and old Temporal histories replay. A payload of an unknown (newer) version, or one that
is not a frame at all, raises [`ProtocolError`][durable_agents.exceptions.ProtocolError], which
is never retried: a worker running older code must not loop on a payload it cannot read.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Annotated, Any, Literal, cast

import pydantic_core
from pydantic import Field, TypeAdapter, ValidationError
from pydantic_ai import messages as _messages
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

from .exceptions import ProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "READABLE_VERSIONS",
    "ApprovalOutcome",
    "DeferredOutcome",
    "DoneOutcome",
    "ErrorOutcome",
    "EventsInput",
    "FailedOutcome",
    "Input",
    "ListInput",
    "MissOutcome",
    "ModelInput",
    "Outcome",
    "ResponseOutcome",
    "RetryOutcome",
    "ReturnOutcome",
    "SegmentInput",
    "StagedOutcome",
    "ToolInput",
    "ToolsOutcome",
    "decode_input",
    "decode_outcome",
    "encode",
    "encode_response",
    "params_digest",
    "response_json",
]

PROTOCOL_VERSION = 1
"""The version this library writes."""
READABLE_VERSIONS = (0, 1)
"""The versions this library reads (0: the unversioned format of December 2026)."""

JsonValue = Any
"""Plain JSON data (the run context snapshot, deps, tool arguments and results)."""


# ----------------------------------------------------------------------------------------------- inputs


@dataclass(kw_only=True)
class ModelInput:
    """A model request: the messages the unit side does not hold yet, on top of a prefix it should hold."""

    t: Literal["model"] = "model"
    v: int = PROTOCOL_VERSION
    run: str
    """The run key: unique per agent run, stable across replays."""
    base: int
    """How many messages of the history the unit side should already hold."""
    digest: str
    """Hash chain digest of those `base` messages (see `_history.py`)."""
    messages: list[_messages.ModelMessage] = field(default_factory=list[_messages.ModelMessage])
    """The messages after `base`."""
    model: str | None = None
    """Model id the unit resolves (`None`: the agent's default model)."""
    settings: dict[str, JsonValue] | None = None
    """The request's model settings."""
    params: ModelRequestParameters | None = None
    """The request parameters; `None` when the unit side holds the ones with `params_digest`."""
    params_digest: str = ""
    """Digest of the request parameters (see [`params_digest`][durable_agents._frames.params_digest])."""
    ctx: dict[str, JsonValue] | None = None
    """Run context snapshot, only when the unit streams to an event-stream handler."""
    deps: JsonValue = None
    """The run's deps as JSON data, only when the unit streams to an event-stream handler."""
    trace: str | None = None
    """The run span's W3C `traceparent`: the unit's span is its child (see `_telemetry.py`)."""


@dataclass(kw_only=True)
class SegmentInput:
    """A piece of a run's history, resent after a miss in pieces that each fit the engine's payload limit."""

    t: Literal["segment"] = "segment"
    v: int = PROTOCOL_VERSION
    run: str
    base: int
    """Index of the first message of this piece; the unit side should hold the `base` messages before it."""
    digest: str
    """Hash chain digest of those `base` messages."""
    messages: list[_messages.ModelMessage] = field(default_factory=list[_messages.ModelMessage])
    trace: str | None = None
    """The run span's W3C `traceparent`: the unit's span is its child (see `_telemetry.py`)."""


@dataclass(kw_only=True)
class ToolInput:
    """One tool call."""

    t: Literal["call"] = "call"
    v: int = PROTOCOL_VERSION
    tool: str
    args: dict[str, JsonValue] = field(default_factory=dict[str, JsonValue])
    model: str | None = None
    ctx: dict[str, JsonValue] = field(default_factory=dict[str, JsonValue])
    deps: JsonValue = None
    trace: str | None = None
    """The run span's W3C `traceparent`: the unit's span is its child (see `_telemetry.py`)."""


@dataclass(kw_only=True)
class ListInput:
    """Listing the tools (and instructions) of a toolset whose tool list is I/O."""

    t: Literal["list"] = "list"
    v: int = PROTOCOL_VERSION
    model: str | None = None
    ctx: dict[str, JsonValue] = field(default_factory=dict[str, JsonValue])
    deps: JsonValue = None
    trace: str | None = None
    """The run span's W3C `traceparent`: the unit's span is its child (see `_telemetry.py`)."""


@dataclass(kw_only=True)
class EventsInput:
    """A batch of agent-level events for the event-stream handler, in the order the run produced them."""

    t: Literal["events"] = "events"
    v: int = PROTOCOL_VERSION
    events: list[_messages.AgentStreamEvent] = field(default_factory=list[_messages.AgentStreamEvent])
    model: str | None = None
    ctx: dict[str, JsonValue] = field(default_factory=dict[str, JsonValue])
    deps: JsonValue = None
    trace: str | None = None
    """The run span's W3C `traceparent`: the unit's span is its child (see `_telemetry.py`)."""


Input = ModelInput | SegmentInput | ToolInput | ListInput | EventsInput
"""Any unit input."""


# ----------------------------------------------------------------------------------------------- outcomes


@dataclass(kw_only=True)
class ResponseOutcome:
    """The model's response."""

    t: Literal["response"] = "response"
    v: int = PROTOCOL_VERSION
    response: _messages.ModelResponse


@dataclass(kw_only=True)
class MissOutcome:
    """The unit side does not hold the prefix the request builds on; the container must resend it."""

    t: Literal["miss"] = "miss"
    v: int = PROTOCOL_VERSION


@dataclass(kw_only=True)
class StagedOutcome:
    """A history segment was stored."""

    t: Literal["staged"] = "staged"
    v: int = PROTOCOL_VERSION


@dataclass(kw_only=True)
class ReturnOutcome:
    """A tool's return value, in one of three encodings that keep pydantic-ai's special return types intact."""

    t: Literal["return"] = "return"
    v: int = PROTOCOL_VERSION
    encoding: Literal["json", "tool_return", "content"] = "json"
    value: JsonValue = None
    """`json`: the value as JSON data."""
    tool_return: _messages.ToolReturn[Any] | None = None
    """`tool_return`: a `ToolReturn`."""
    content: list[_messages.UserContent] | None = None
    """`content`: multimodal content (a single item is returned as itself)."""
    usage: dict[str, JsonValue] | None = None
    """Usage the tool recorded on its run context (e.g. a delegate agent's)."""
    deps: JsonValue = None
    """The run's deps as JSON data, when the tool changed them (`None`: unchanged); see `DepsCodec.changed`."""


@dataclass(kw_only=True)
class RetryOutcome:
    """The tool asked the model to try again (`ModelRetry`, or arguments that did not validate)."""

    t: Literal["retry"] = "retry"
    v: int = PROTOCOL_VERSION
    message: str
    usage: dict[str, JsonValue] | None = None
    deps: JsonValue = None


@dataclass(kw_only=True)
class FailedOutcome:
    """The tool failed in a way the model is told about (`ToolFailed`)."""

    t: Literal["failed"] = "failed"
    v: int = PROTOCOL_VERSION
    message: str
    usage: dict[str, JsonValue] | None = None
    deps: JsonValue = None


@dataclass(kw_only=True)
class DeferredOutcome:
    """The tool deferred its result (`CallDeferred`)."""

    t: Literal["deferred"] = "deferred"
    v: int = PROTOCOL_VERSION
    metadata: dict[str, JsonValue] | None = None
    kind: Literal["external", "question"] = "external"
    usage: dict[str, JsonValue] | None = None
    deps: JsonValue = None


@dataclass(kw_only=True)
class ApprovalOutcome:
    """The tool call needs approval (`ApprovalRequired`)."""

    t: Literal["approval"] = "approval"
    v: int = PROTOCOL_VERSION
    metadata: dict[str, JsonValue] | None = None
    usage: dict[str, JsonValue] | None = None
    deps: JsonValue = None


@dataclass(kw_only=True)
class ToolsOutcome:
    """A toolset's tools and instructions."""

    t: Literal["tools"] = "tools"
    v: int = PROTOCOL_VERSION
    tools: list[ToolDefinition] = field(default_factory=list[ToolDefinition])
    max_retries: list[int] = field(default_factory=list[int])
    instructions: str | None = None


@dataclass(kw_only=True)
class DoneOutcome:
    """The events were delivered."""

    t: Literal["done"] = "done"
    v: int = PROTOCOL_VERSION


@dataclass(kw_only=True)
class ErrorOutcome:
    """A fatal error, as a value: the engine records it and the container raises it (see `_errors.py`)."""

    t: Literal["error"] = "error"
    v: int = PROTOCOL_VERSION
    error: str
    """The error's class name; only allow-listed names are rebuilt as that class."""
    message: str
    attrs: dict[str, str | int | float | bool | None] = field(
        default_factory=dict[str, str | int | float | bool | None]
    )
    """The error's plain attributes (e.g. `status_code`)."""


Outcome = (
    ResponseOutcome
    | MissOutcome
    | StagedOutcome
    | ReturnOutcome
    | RetryOutcome
    | FailedOutcome
    | DeferredOutcome
    | ApprovalOutcome
    | ToolsOutcome
    | DoneOutcome
    | ErrorOutcome
)
"""Any unit outcome."""

_INPUT_TA: TypeAdapter[Input] = TypeAdapter(Annotated[Input, Field(discriminator="t")])
_OUTCOME_TA: TypeAdapter[Outcome] = TypeAdapter(Annotated[Outcome, Field(discriminator="t")])
_PARAMS_TA: TypeAdapter[ModelRequestParameters] = TypeAdapter(ModelRequestParameters)


def encode(frame: Input | Outcome) -> bytes:
    """Encode a frame as JSON bytes.

    Raises:
        pydantic_core.PydanticSerializationError: A value in the frame cannot be serialized; callers turn it
            into a [`SerializationError`][durable_agents.exceptions.SerializationError] naming what it was.
    """
    # Optional fields that are unset are left out (they decode to the same defaults): a record of a run holds
    # thousands of frames.
    unset = {name for name in _optional_fields(type(frame)) if getattr(frame, name) is None}
    if isinstance(frame, ModelInput | SegmentInput | ToolInput | ListInput | EventsInput):
        return _INPUT_TA.dump_json(frame, exclude=unset)
    return _OUTCOME_TA.dump_json(frame, exclude=unset)


@functools.cache
def _optional_fields(cls: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name not in ("t", "v"))


_RESPONSE_HEAD = b'{"t":"response","v":%d,"response":' % PROTOCOL_VERSION


def encode_response(message_json: bytes) -> bytes:
    """The `ResponseOutcome` frame around a response already encoded as a message (it is not encoded twice).

    Decodes exactly as `encode(ResponseOutcome(response=...))` does; `response_json` takes the chunk out again.
    """
    return _RESPONSE_HEAD + message_json + b"}"


def response_json(payload: bytes) -> bytes | None:
    """The response's message encoding inside a frame made by `encode_response`; `None` for any other payload."""
    if payload.startswith(_RESPONSE_HEAD) and payload.endswith(b"}"):
        return payload[len(_RESPONSE_HEAD) : -1]
    return None


def params_digest(params: ModelRequestParameters) -> tuple[str, bytes]:
    """The digest of request parameters and their JSON (the unit side keeps the last ones per run)."""
    data = _PARAMS_TA.dump_json(params)
    return hashlib.blake2b(data, digest_size=16).hexdigest(), data


def decode_input(payload: bytes) -> Input:
    """Decode a unit input of any readable version."""
    if _is_v0(payload):
        return _input_from_v0(*_split_v0(payload))
    return cast(Input, _decode(_INPUT_TA, payload, "unit input"))


def decode_outcome(payload: bytes) -> Outcome:
    """Decode a unit outcome of any readable version."""
    if _is_v0(payload):
        return _outcome_from_v0(*_split_v0(payload))
    return cast(Outcome, _decode(_OUTCOME_TA, payload, "unit outcome"))


def _decode(adapter: TypeAdapter[Any], payload: bytes, what: str) -> Any:
    try:
        frame = adapter.validate_json(payload)
    except ValidationError as exc:
        version = _version_of(payload)
        if version is not None and version not in READABLE_VERSIONS:
            raise ProtocolError(_newer(what, version)) from exc
        raise ProtocolError(
            f"A {what} is not a valid unit frame (protocol version {version}): {exc.errors()[0]['msg']} at "
            f"{exc.errors()[0]['loc']}. The payload was damaged, or written by an incompatible durable_agents."
        ) from exc
    if frame.v not in READABLE_VERSIONS:
        raise ProtocolError(_newer(what, frame.v))
    return frame


def _newer(what: str, version: object) -> str:
    return (
        f"A {what} was written in unit protocol version {version}; this durable_agents reads versions "
        f"{', '.join(map(str, READABLE_VERSIONS))}. A newer library wrote it: run every worker on the "
        "same or a newer durable_agents before resuming these runs."
    )


def _version_of(payload: bytes) -> int | None:
    try:
        data = pydantic_core.from_json(payload)
    except ValueError:
        return None
    if isinstance(data, dict):
        version = cast(dict[str, Any], data).get("v")
        if isinstance(version, int):
            return version
    return None


# ----------------------------------------------------------------------------------------------- version 0

_MESSAGE_TA: TypeAdapter[_messages.ModelMessage] = TypeAdapter(_messages.ModelMessage)
_RESPONSE_TA: TypeAdapter[_messages.ModelResponse] = TypeAdapter(_messages.ModelResponse)
_EVENTS_TA: TypeAdapter[list[_messages.AgentStreamEvent]] = TypeAdapter(list[_messages.AgentStreamEvent])
_TOOL_DEFS_TA: TypeAdapter[list[ToolDefinition]] = TypeAdapter(list[ToolDefinition])
_TOOL_RETURN_TA: TypeAdapter[_messages.ToolReturn[Any]] = TypeAdapter(_messages.ToolReturn[Any])
_CONTENT_TA: TypeAdapter[list[_messages.UserContent]] = TypeAdapter(list[_messages.UserContent])


def _is_v0(payload: bytes) -> bool:
    # Frames of version 1 and later start with their type tag (the first field). Version 0 frames are a JSON header
    # without a version, then NUL-separated chunks (JSON never contains a raw NUL).
    if payload.startswith(b'{"t":'):
        return False
    if b"\x00" in payload:
        return True
    return payload.startswith(b"{") and _version_of(payload) is None


def _split_v0(payload: bytes) -> tuple[dict[str, Any], list[bytes]]:
    head, *chunks = payload.split(b"\x00")
    try:
        header = pydantic_core.from_json(head)
    except ValueError as exc:
        raise ProtocolError(f"A version 0 unit frame has a damaged header: {exc}.") from exc
    if not isinstance(header, dict):
        raise ProtocolError("A version 0 unit frame's header is not a JSON object.")
    return cast(dict[str, Any], header), chunks


def _deps_v0(chunk: bytes | None) -> Any:
    return None if chunk is None else pydantic_core.from_json(chunk)


def _input_from_v0(header: Mapping[str, Any], chunks: Sequence[bytes]) -> Input:
    try:
        if "run" in header:
            params = header.get("params")
            params_obj = None if params is None else _PARAMS_TA.validate_python(params)
            digest = header.get("params_digest")
            if digest is None and params_obj is not None:
                # Before request-parameter deltas, the parameters were always sent and had no digest.
                digest = params_digest(params_obj)[0]
            return ModelInput(
                run=header["run"],
                base=header["base"],
                digest=header["digest"],
                messages=[_MESSAGE_TA.validate_json(c) for c in chunks[1:]],
                model=header.get("model"),
                settings=header.get("settings"),
                params=params_obj,
                params_digest=digest or "",
                ctx=header.get("ctx"),
                deps=_deps_v0(chunks[0]) if chunks and header.get("ctx") is not None else None,
                v=0,
            )
        if "tool" in header:
            return ToolInput(
                tool=header["tool"],
                args=header.get("args") or {},
                model=header.get("model"),
                ctx=header.get("ctx") or {},
                deps=_deps_v0(chunks[0] if chunks else None),
                v=0,
            )
        if len(chunks) >= 2:
            return EventsInput(
                events=_EVENTS_TA.validate_json(chunks[1]),
                model=header.get("model"),
                ctx=header.get("ctx") or {},
                deps=_deps_v0(chunks[0]),
                v=0,
            )
        return ListInput(
            model=header.get("model"), ctx=header.get("ctx") or {}, deps=_deps_v0(chunks[0] if chunks else None), v=0
        )
    except (KeyError, ValidationError, ValueError) as exc:
        raise ProtocolError(f"A version 0 unit input could not be read: {exc!r}.") from exc


def _outcome_from_v0(header: Mapping[str, Any], chunks: Sequence[bytes]) -> Outcome:
    kind = header.get("kind")
    usage = header.get("usage")
    try:
        match kind:
            case "response":
                return ResponseOutcome(response=_RESPONSE_TA.validate_json(chunks[0]), v=0)
            case "miss":
                return MissOutcome(v=0)
            case "return":
                encoding = header.get("encoding", "json")
                if encoding == "tool_return":
                    return ReturnOutcome(
                        encoding="tool_return", tool_return=_TOOL_RETURN_TA.validate_json(chunks[0]), usage=usage, v=0
                    )
                if encoding == "content":
                    return ReturnOutcome(
                        encoding="content", content=_CONTENT_TA.validate_json(chunks[0]), usage=usage, v=0
                    )
                return ReturnOutcome(value=pydantic_core.from_json(chunks[0]), usage=usage, v=0)
            case "retry":
                return RetryOutcome(message=header["message"], usage=usage, v=0)
            case "failed":
                return FailedOutcome(message=header["message"], usage=usage, v=0)
            case "deferred":
                return DeferredOutcome(
                    metadata=header.get("metadata"), kind=header.get("deferred_kind", "external"), usage=usage, v=0
                )
            case "approval":
                return ApprovalOutcome(metadata=header.get("metadata"), usage=usage, v=0)
            case "tools":
                return ToolsOutcome(
                    tools=_TOOL_DEFS_TA.validate_json(chunks[0]),
                    max_retries=header["max_retries"],
                    instructions=header.get("instructions"),
                    v=0,
                )
            case "done":
                return DoneOutcome(v=0)
            case "error":
                raw = cast(Mapping[str, Any], header.get("attrs") or {})
                attrs: dict[str, str | int | float | bool | None] = {
                    str(k): v for k, v in raw.items() if isinstance(v, str | int | float | bool)
                }
                return ErrorOutcome(
                    error=str(header.get("type", "Exception")), message=header["message"], attrs=attrs, v=0
                )
            case _:
                raise ProtocolError(f"A version 0 unit outcome has an unknown kind {kind!r}.")
    except (KeyError, IndexError, ValidationError, ValueError) as exc:
        raise ProtocolError(f"A version 0 unit outcome of kind {kind!r} could not be read: {exc!r}.") from exc
