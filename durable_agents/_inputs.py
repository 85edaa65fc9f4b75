"""The run arguments every engine checks before a run starts: the prompt and the message history.

A prompt or a message history that cannot reach a model unit fails the same way every time, so it must fail at
once with an error that names it, not as a raw pydantic error in the middle of the agent graph (after the engine
recorded a run), nor as an error the engine retries: inside a Temporal workflow an error that is not ours retries
the workflow task forever. [`check_run_inputs`][durable_agents._inputs.check_run_inputs] runs when `run()` is
called outside a container (before DBOS or Prefect records a run) and again when a container starts a run
(deployments, recovered runs, and runs started in a Temporal workflow).

Both are encoded as the model unit will encode them, with pydantic's serializer warnings raised as errors, so
that a lone surrogate in a string, a plain string where a message belongs, a part object pydantic-ai does not
know or an item without a JSON form is refused. The history crosses into the first model unit (in pieces, if it
is over the payload limit), so it must also fit the engine's bound
([`max_history_bytes`][durable_agents.DurableAgent.max_history_bytes]): a cheap lower bound on its size is
checked before it is encoded at all (encoding a history of tens of thousands of messages takes longer than
Temporal lets a workflow task run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pydantic_core
from pydantic import TypeAdapter
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, UserContent

from ._codec import check_size
from .exceptions import InvalidRunInputError

__all__ = ["check_run_inputs"]

_PROMPT_TA: TypeAdapter[str | Sequence[UserContent] | None] = TypeAdapter(str | Sequence[UserContent] | None)
_MESSAGE_TA: TypeAdapter[ModelMessage] = TypeAdapter(ModelMessage)
_HISTORY_TA: TypeAdapter[Sequence[ModelMessage]] = TypeAdapter(Sequence[ModelMessage])

# The fewest bytes one message part takes in its JSON encoding besides its text (its kind, its content key and a
# timestamp): with the text's length, a bound on a history's size that costs one pass over its parts.
_MIN_PART_BYTES = 64

_TEXT_FIX = "text must be valid Unicode (no lone surrogates, as decoding bytes with 'surrogateescape' leaves)"
_HISTORY_FIX = (
    "Fix: pass `result.all_messages()` of an earlier run, or stored JSON loaded with "
    f"`pydantic_ai.messages.ModelMessagesTypeAdapter.validate_json`, built of pydantic-ai parts; {_TEXT_FIX}."
)


def check_run_inputs(agent: str, user_prompt: Any, message_history: Any, limit: int | None) -> None:
    """Refuse a prompt or message history that cannot reach a model unit.

    Args:
        agent: The agent's name, for the error message.
        user_prompt: The run's prompt.
        message_history: The run's `message_history`, if any.
        limit: The largest encoded history the engine takes (`DurableAgent.max_history_bytes`).

    Raises:
        InvalidRunInputError: The prompt or the history is not pydantic-ai data, or holds text that is not valid
            Unicode; the message names the argument (and the message's index) and the fix.
        PayloadTooLargeError: The history is larger than `limit`.
    """
    problem = _problem(_PROMPT_TA, user_prompt)
    if problem is not None:
        raise InvalidRunInputError(
            f"The prompt of a run of agent {agent!r} cannot be serialized: {problem}. It crosses into the model unit "
            f"as JSON. Fix: pass a str or a list of pydantic-ai user content (str, ImageUrl, BinaryContent, ...); "
            f"{_TEXT_FIX}."
        )
    if message_history is None:
        return
    if not isinstance(message_history, Sequence) or isinstance(message_history, str | bytes):
        raise InvalidRunInputError(
            f"message_history of a run of agent {agent!r} must be a list of pydantic-ai messages, got "
            f"{type(message_history).__name__}. {_HISTORY_FIX}"
        )
    history = cast(Sequence[Any], message_history)
    bound = 0
    for index, message in enumerate(history):
        if not isinstance(message, ModelRequest | ModelResponse):
            raise InvalidRunInputError(
                f"message_history[{index}] of a run of agent {agent!r} is a {type(message).__name__}, not a "
                f"pydantic-ai ModelRequest or ModelResponse. {_HISTORY_FIX}"
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
        size = len(_HISTORY_TA.dump_json(history, warnings="error"))
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError):
        for index, message in enumerate(history):
            problem = _problem(_MESSAGE_TA, message)
            if problem is not None:
                raise InvalidRunInputError(
                    f"message_history[{index}] of a run of agent {agent!r} cannot be serialized: {problem}. It "
                    f"crosses into the model unit as JSON. {_HISTORY_FIX}"
                ) from None
        raise  # pragma: no cover  # a history fails only through one of its messages
    check_size(size, limit, what, fix=fix)


def _problem(adapter: TypeAdapter[Any], value: Any) -> str | None:
    """What keeps `value` from encoding exactly as `adapter`'s type, or `None`."""
    try:
        adapter.dump_json(value, warnings="error")
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return " ".join(lines)[:300]
    return None
