"""The run arguments every engine checks when `run()` is called, before a container starts or a unit runs.

A prompt or a message history that cannot cross the unit boundary fails the same way every time, so it must
fail at once with an error that names it, not as a raw pydantic error in the first model unit (after the engine
recorded a run), nor as an error that an engine retries: inside a Temporal workflow an error that is not ours
retries the workflow task forever.

Both are encoded as the model unit will encode them, with pydantic's serializer warnings raised as errors, so
that a lone surrogate in a string, a plain string where a message belongs or a part object pydantic-ai does not
know is refused, and so is anything else that would not come back as the same value on the unit side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pydantic_core
from pydantic import TypeAdapter
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, UserContent

from .exceptions import InvalidRunInputError

__all__ = ["check_run_inputs"]

_PROMPT_TA: TypeAdapter[str | Sequence[UserContent] | None] = TypeAdapter(str | Sequence[UserContent] | None)
_MESSAGE_TA: TypeAdapter[ModelMessage] = TypeAdapter(ModelMessage)
_HISTORY_TA: TypeAdapter[Sequence[ModelMessage]] = TypeAdapter(Sequence[ModelMessage])

_TEXT_FIX = "strings must be valid Unicode: decode bytes with `errors='replace'` rather than 'surrogateescape'"


def check_run_inputs(user_prompt: Any, kwargs: Mapping[str, Any]) -> None:
    """Refuse a prompt or message history that cannot cross the unit boundary.

    Raises:
        InvalidRunInputError: The prompt or the history is not pydantic-ai data, or holds text that is not valid
            Unicode; the message names the argument (and the message's index) and the fix.
    """
    problem = _problem(_PROMPT_TA, user_prompt)
    if problem is not None:
        raise InvalidRunInputError(
            f"The run's `user_prompt` ({type(user_prompt).__name__}) cannot cross the unit boundary: {problem}. "
            "Fix: pass a str or a list of pydantic-ai user content (str, ImageUrl, BinaryContent, ...); "
            f"{_TEXT_FIX}."
        )
    history = kwargs.get("message_history")
    if history is None or _problem(_HISTORY_TA, history) is None:
        return
    fix = (
        "Fix: pass the messages of an earlier run (`result.all_messages()`, or `ModelMessagesTypeAdapter` to load "
        f"them), or build ModelRequest / ModelResponse objects of pydantic-ai parts; {_TEXT_FIX}."
    )
    if isinstance(history, str | bytes) or not isinstance(history, Sequence):
        raise InvalidRunInputError(
            f"The run's `message_history` is a {type(history).__name__}, not a list of pydantic-ai messages. {fix}"
        )
    for index, message in enumerate(history):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if not isinstance(message, ModelRequest | ModelResponse):
            problem = f"it is a {type(message).__name__}, not a ModelRequest or ModelResponse"  # pyright: ignore[reportUnknownArgumentType]
        else:
            problem = _problem(_MESSAGE_TA, message)
        if problem is not None:
            raise InvalidRunInputError(f"`message_history[{index}]` cannot cross the unit boundary: {problem}. {fix}")


def _problem(adapter: TypeAdapter[Any], value: Any) -> str | None:
    """What keeps `value` from encoding exactly as `adapter`'s type, or `None`."""
    try:
        adapter.dump_json(value, warnings="error")
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return " ".join(lines)[:300]
    return None
