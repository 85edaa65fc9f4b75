"""Fatal errors as values: how an error raised in a unit crosses back into the container.

A unit turns a fatal error (see `_policy.py`) into an
[`ErrorOutcome`][durable_agents._frames.ErrorOutcome] that names the error's class and carries
its message and plain attributes. The container rebuilds it as that class only if the class is on
an allow-list (durable_agents' own errors and pydantic-ai's `UserError` / `AgentRunError` family);
anything else becomes a [`UnitFailedError`][durable_agents.exceptions.UnitFailedError] with the
original type name and message. Nothing is imported by name: whoever can write an engine's
journal must not be able to choose code for the container to import.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any

from pydantic_ai import exceptions as _pai_exceptions

from . import exceptions as _exceptions
from ._frames import ErrorOutcome
from .exceptions import DurableAgentsError, UnitFailedError

__all__ = ["ALLOWED_ERRORS", "error_outcome", "rebuild_error"]


def _allowed() -> dict[str, type[BaseException]]:
    allowed: dict[str, type[BaseException]] = {}
    for name in _exceptions.__all__:
        cls = getattr(_exceptions, name)
        if isinstance(cls, type) and issubclass(cls, DurableAgentsError):
            allowed[name] = cls
    for name, cls in vars(_pai_exceptions).items():
        if (
            not name.startswith("_")
            and isinstance(cls, type)
            and issubclass(cls, _pai_exceptions.UserError | _pai_exceptions.AgentRunError)
        ):
            allowed[name] = cls
    return allowed


ALLOWED_ERRORS: dict[str, type[BaseException]] = _allowed()
"""The error classes a unit's error outcome may be rebuilt as, by class name."""


def error_outcome(exc: BaseException) -> ErrorOutcome:
    """The value a unit returns for a fatal error."""
    name = next((c.__name__ for c in type(exc).__mro__ if ALLOWED_ERRORS.get(c.__name__) is c), type(exc).__name__)
    attrs = {
        k: v
        for k, v in vars(exc).items()
        if not k.startswith("_") and (v is None or isinstance(v, str | int | float | bool))
    }
    message = getattr(exc, "message", None)
    return ErrorOutcome(error=name, message=message if isinstance(message, str) else str(exc), attrs=attrs)


def rebuild_error(unit: str, outcome: ErrorOutcome) -> BaseException:
    """The exception the container raises for a unit's error outcome."""
    cls = ALLOWED_ERRORS.get(outcome.error)
    if cls is not None and issubclass(cls, DurableAgentsError):
        exc = cls.__new__(cls)
        DurableAgentsError.__init__(exc, outcome.message)
        for key, value in outcome.attrs.items():
            with contextlib.suppress(AttributeError):
                setattr(exc, key, value)
        return exc
    if cls is not None:
        rebuilt = _from_signature(cls, outcome.message, outcome.attrs)
        if rebuilt is not None:
            return rebuilt
    return UnitFailedError(unit, outcome.error, outcome.message)


def _from_signature(cls: type[BaseException], message: str, attrs: dict[str, Any]) -> BaseException | None:
    """Rebuild a pydantic-ai error from its constructor's parameters, where its attributes provide them."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # pragma: no cover - every allow-listed class has a signature
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
