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
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, UserContent
from pydantic_ai.tools import DeferredToolResults
from pydantic_ai.usage import RunUsage, UsageLimits

from ._codec import DepsCodec, check_size
from .exceptions import ConfigurationError, ProtocolError, SerializationError

__all__ = ["RUN_ARGS_VERSION", "check_run_inputs", "decode_run_args", "encode_run_args", "unstored_run_args"]

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


@functools.cache
def _adapter(key: str) -> TypeAdapter[Any]:
    return TypeAdapter(_TYPES[key])


def encode_run_args(deps_codec: DepsCodec, user_prompt: Any, kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A run's arguments as a JSON frame, and the arguments that are not data (returned as they are).

    Args:
        deps_codec: The agent's deps codec; deps are always encoded (they were checked before).
        user_prompt: The run's prompt.
        kwargs: The run's other `Agent.run` arguments.
    """
    args: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in {"user_prompt": user_prompt, **kwargs}.items():
        if key == "deps":
            args[key] = pydantic_core.from_json(deps_codec.encode(value))
        elif key in _TYPES and not callable(value):
            try:
                args[key] = pydantic_core.from_json(_adapter(key).dump_json(value))
            except (pydantic_core.PydanticSerializationError, TypeError, ValueError):
                rest[key] = value
        else:
            rest[key] = value
    frame = {"v": RUN_ARGS_VERSION, "args": args, "unstored": sorted(rest)}
    return pydantic_core.to_json(frame).decode(), rest


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


# The fewest bytes one message part takes in its JSON encoding besides its text (its kind, its content key and a
# timestamp): with the text's length, a bound on a history's size that costs one pass over its parts and is taken
# before the history is encoded (encoding a history of tens of thousands of messages takes seconds in a workflow).
_MIN_PART_BYTES = 64


def check_run_inputs(agent: str, user_prompt: Any, message_history: Any, limit: int | None) -> None:
    """Refuse, before the run starts, a prompt or history that cannot reach a model unit.

    Inside a container these would otherwise fail in the middle of the agent graph with a bare pydantic error
    (on Temporal: a workflow task retried forever), or, for a long history, after the container has spent longer
    on it than the engine allows. The history crosses into the first model unit, so it must fit one unit input:
    a cheap lower bound on its size is checked before it is encoded at all.

    Raises:
        SerializationError: The prompt or a message cannot be encoded (a lone surrogate, a foreign object).
        ConfigurationError: `message_history` is not a list of pydantic-ai messages.
        PayloadTooLargeError: The encoded history is larger than `limit`.
    """
    try:
        _adapter("user_prompt").dump_json(user_prompt)
    except (pydantic_core.PydanticSerializationError, UnicodeError) as exc:
        raise SerializationError(
            f"The prompt of a run of agent {agent!r} cannot be serialized: {exc}. It crosses into the model unit "
            "as JSON. Fix: pass text that is valid Unicode (no lone surrogates, e.g. from a bad decode), or "
            "pydantic-ai content objects."
        ) from exc
    if message_history is None:
        return
    if not isinstance(message_history, Sequence) or isinstance(message_history, str | bytes):
        raise ConfigurationError(
            f"message_history of a run of agent {agent!r} must be a list of pydantic-ai messages, got "
            f"{type(message_history).__name__}. Fix: pass `result.all_messages()` of an earlier run, or stored JSON "
            "loaded with `pydantic_ai.messages.ModelMessagesTypeAdapter.validate_json`."
        )
    history = cast(Sequence[Any], message_history)
    bound = 0
    for index, message in enumerate(history):
        if not isinstance(message, ModelRequest | ModelResponse):
            raise ConfigurationError(
                f"message_history[{index}] of a run of agent {agent!r} is a {type(message).__name__}, not a "
                "pydantic-ai ModelRequest or ModelResponse. Fix: pass `result.all_messages()` of an earlier run, or "
                "stored JSON loaded with `pydantic_ai.messages.ModelMessagesTypeAdapter.validate_json`."
            )
        for part in message.parts:
            content = getattr(part, "content", None)
            bound += _MIN_PART_BYTES + (len(content) if isinstance(content, str) else 0)
    what = f"The message_history of a run of agent {agent!r} ({len(history):,} messages)"
    fix = (
        "pass a shorter history (drop or summarise old messages, e.g. with a history processor run before the "
        "durable run), or store the conversation elsewhere and pass only its recent part."
    )
    check_size(bound, limit, what, fix=fix, at_least=True)
    try:
        size = len(_adapter("message_history").dump_json(history))
    except (pydantic_core.PydanticSerializationError, UnicodeError) as exc:
        raise SerializationError(
            f"{what} cannot be serialized: {exc}. It crosses into the model unit as JSON. Fix: build messages "
            "from pydantic-ai's message and part classes with plain content (valid Unicode text, no foreign objects)."
        ) from exc
    check_size(size, limit, what, fix=fix)
