r"""The arguments of one agent run as a JSON frame, so an engine can store them and a resume gets them back exactly.

An engine that stores a container's parameters for itself (Prefect: as JSON, writing `'<TypeName>'` for
what it cannot encode) changes them on the way: a multimodal prompt comes back as dicts, and nothing tells
a prompt that looks like `'<task>'` from a placeholder. Here each argument pydantic-ai defines a data type
for is encoded with a cached `TypeAdapter` of that type (deps with the agent's `deps_type`) and validated
back with the same adapter, in JSON mode, so `bytes` and discriminated unions survive:

| argument | type |
|---|---|
| `user_prompt` | `str \| Sequence[UserContent] \| None` |
| `message_history` | `list[ModelMessage]` |
| `deps` | the agent's `deps_type` |
| `deferred_tool_results`, `usage_limits`, `usage` | their pydantic-ai dataclasses |
| `model` | `str` (a `models=` key or `'provider:model'`) |
| `model_settings`, `metadata` | JSON objects |
| `conversation_id`, `run_id`, `instructions` | `str` |
| `timeout` | `float` |
| `infer_name` | `bool` |

Anything else (an `output_type`, an `event_stream_handler`, a callable `metadata`) cannot be stored as data:
[`encode_run_args`][durable_agents._run_args.encode_run_args] returns it apart, for the engine to pass in
process, and records its name in the frame, so a resume can insist that the caller passes it again.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pydantic_core
from pydantic import TypeAdapter, ValidationError
from pydantic_ai.messages import ModelMessage, UserContent
from pydantic_ai.tools import DeferredToolResults
from pydantic_ai.usage import RunUsage, UsageLimits

from ._codec import DepsCodec
from .exceptions import InvalidRunInputError, ProtocolError

__all__ = [
    "RUN_ARGS_VERSION",
    "decode_json_args",
    "decode_run_args",
    "encode_run_args",
    "run_args_trace",
    "unstored_run_args",
]

RUN_ARGS_VERSION = 1
"""The version of the run-arguments frame this library writes and reads."""

_TYPES: dict[str, Any] = {
    "user_prompt": str | Sequence[UserContent] | None,
    "message_history": list[ModelMessage],
    "deferred_tool_results": DeferredToolResults,
    "usage_limits": UsageLimits,
    "usage": RunUsage,
    "model": str,
    "model_settings": dict[str, Any],
    "metadata": dict[str, Any],
    "conversation_id": str,
    "run_id": str,
    "instructions": str,
    "timeout": float,
    "infer_name": bool,
}

# How errors name the types whose `__name__` does not say enough.
_LABELS = {"user_prompt": "str | Sequence[UserContent]", "message_history": "list[ModelMessage]"}


@functools.cache
def _adapter(key: str) -> TypeAdapter[Any]:
    return TypeAdapter(_TYPES[key])


def encode_run_args(
    deps_codec: DepsCodec, user_prompt: Any, kwargs: Mapping[str, Any], trace: str | None = None
) -> tuple[str, dict[str, Any]]:
    """A run's arguments as a JSON frame, and the arguments that are not data (returned as they are).

    Args:
        deps_codec: The agent's deps codec; deps are always encoded (they were checked before).
        user_prompt: The run's prompt.
        kwargs: The run's other `Agent.run` arguments.
        trace: The caller's W3C `traceparent`, kept with the arguments so a resumed run joins the caller's trace.
    """
    args: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in {"user_prompt": user_prompt, **kwargs}.items():
        if key == "deps":
            args[key] = pydantic_core.from_json(deps_codec.encode(value))
        elif key in _TYPES:
            # Judged by encoding, not by `callable()`: `RunUsage` is data and callable; with warnings as errors a
            # value of another type (a function as `metadata`) is refused instead of encoded as a guess.
            try:
                args[key] = pydantic_core.from_json(_adapter(key).dump_json(value, warnings="error"))
            except (pydantic_core.PydanticSerializationError, TypeError, ValueError):
                rest[key] = value
        else:
            rest[key] = value
    frame: dict[str, Any] = {"v": RUN_ARGS_VERSION, "args": args, "unstored": sorted(rest)}
    if trace is not None:
        frame["trace"] = trace
    return pydantic_core.to_json(frame).decode(), rest


def run_args_trace(frame: str) -> str | None:
    """The caller's `traceparent` stored with a run's arguments, if any."""
    try:
        data: Any = pydantic_core.from_json(frame)
    except ValueError:
        return None
    trace = cast(dict[str, Any], data).get("trace") if isinstance(data, dict) else None
    return trace if isinstance(trace, str) else None


def unstored_run_args(frame: str) -> list[str]:
    """The names of the run's arguments that were not data, so the frame does not hold them."""
    try:
        data: Any = pydantic_core.from_json(frame)
    except ValueError:
        return []
    names: Any = cast(dict[str, Any], data).get("unstored") if isinstance(data, dict) else None
    return [str(n) for n in cast(list[Any], names)] if isinstance(names, list) else []


def decode_run_args(deps_codec: DepsCodec, frame: str) -> tuple[Any, dict[str, Any]]:
    """The prompt and other arguments stored by [`encode_run_args`][durable_agents._run_args.encode_run_args].

    Raises:
        ProtocolError: The frame is damaged or of an unknown version.
    """
    try:
        data: Any = pydantic_core.from_json(frame)
        version = cast(dict[str, Any], data).get("v") if isinstance(data, dict) else None
        if version != RUN_ARGS_VERSION:
            raise ProtocolError(
                f"The stored run arguments are of version {version!r}; this durable_agents reads version "
                f"{RUN_ARGS_VERSION}. Fix: resume with the durable_agents version that started the run."
            )
        stored = cast(dict[str, Any], data["args"])
        kwargs: dict[str, Any] = {}
        for key, value in stored.items():
            if key == "deps":
                kwargs[key] = deps_codec.decode_value(value)
            elif key in _TYPES:
                kwargs[key] = _adapter(key).validate_json(pydantic_core.to_json(value))
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise ProtocolError(f"The stored run arguments could not be read: {exc!r}.") from exc
    return kwargs.pop("user_prompt", None), kwargs


def decode_json_args(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Run arguments given as JSON data (a deployment's parameters) as the types `Agent.run` takes.

    `usage_limits={"request_limit": 5}` becomes a `UsageLimits`, a history of dicts a list of messages; values
    that already are of their type, and arguments without a data type here, are kept as they are (deps are the
    engine's to decode, with the agent's `deps_type`).

    Raises:
        InvalidRunInputError: A value given as JSON data does not validate as its argument's type.
    """
    decoded = dict(kwargs)
    for key, value in kwargs.items():
        if key == "deps" or key not in _TYPES or not _is_json_container(value):
            continue
        try:
            decoded[key] = _adapter(key).validate_json(pydantic_core.to_json(value))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()[:3])
            type_name = _LABELS.get(key) or getattr(_TYPES[key], "__name__", str(_TYPES[key]))
            raise InvalidRunInputError(
                f"The run argument `{key}` was given as JSON data that is not a {type_name} ({problems}). "
                f"Fix: pass the JSON form of a {type_name}, e.g. what "
                f"`TypeAdapter({type_name}).dump_python(value, mode='json')` gives."
            ) from exc
    return decoded


def _is_json_container(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    return isinstance(value, list) and any(isinstance(v, dict) for v in cast(list[Any], value))
