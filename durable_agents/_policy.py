"""The one error policy: which failures the engine may retry, and how long it should wait first.

Every engine adapter derives its retry rules from [`classify`][durable_agents._policy.classify]:
Temporal's non-retryable error types and `next_retry_delay`, DBOS's `should_retry`, Prefect's
`retry_condition_fn`. A unit body turns a *fatal* error into an error outcome (a recorded value),
so the engine never sees it and never runs the unit again; only *retryable* errors reach the engine.

- an error carrying an HTTP status (pydantic-ai's `ModelHTTPError`, provider SDK errors): 4xx is
  fatal except 408, 409 and 429; 429 and 5xx are retryable;
- pydantic-ai's `ModelAPIError` categories without a status: a rejected request or an exhausted
  quota is fatal; rate limits, outages, timeouts and connection errors are retryable;
- durable_agents' own errors, pydantic-ai's `UserError` and `AgentRunError` (`UsageLimitExceeded`,
  `UnexpectedModelBehavior`...), and values that cannot be serialized: fatal, since the same input
  fails the same way;
- anything else (network errors, a tool's own exceptions): retryable, per the unit's config.

`Retry-After` (seconds) is taken from pydantic-ai's `retry_after`, or from a `Retry-After` /
`retry-after-ms` response header, and becomes the next retry's delay where the engine allows one.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import pydantic_core
from pydantic_ai.exceptions import (
    AgentRunError,
    ModelAPIError,
    ModelQuotaExceededError,
    ModelRequestRejectedError,
    UserError,
)

from .exceptions import DurableAgentsError

__all__ = [
    "FATAL_TYPES",
    "MAX_RETRY_AFTER",
    "RETRYABLE_STATUSES",
    "Verdict",
    "classify",
    "is_fatal",
    "pause_before_retry",
    "status_code",
]

MAX_RETRY_AFTER = 600.0
"""The longest `Retry-After` honoured, in seconds (a misbehaving server must not park a unit for hours)."""

FATAL_TYPES: tuple[type[BaseException], ...] = (
    DurableAgentsError,
    UserError,
    AgentRunError,
    pydantic_core.PydanticSerializationError,
)
"""Error types that fail the run instead of being retried (HTTP statuses are judged first, see the table)."""

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""Client-error statuses that can heal on retry; every other 4xx is fatal, every 5xx retryable."""


@dataclass(frozen=True)
class Verdict:
    """What the policy says about one failure."""

    fatal: bool
    """Fail the run now; never run the unit again."""
    retry_after: float | None = None
    """Seconds the other side asked us to wait before the next attempt, if it said."""


def classify(exc: BaseException) -> Verdict:
    """The verdict on an error raised inside a unit (or by the container on its behalf)."""
    status = status_code(exc)
    if status is not None:
        fatal = 400 <= status < 500 and status not in RETRYABLE_STATUSES
        return Verdict(fatal, None if fatal else _retry_after(exc))
    if isinstance(exc, ModelAPIError):
        if isinstance(exc, ModelRequestRejectedError | ModelQuotaExceededError):
            return Verdict(True)
        return Verdict(False, _retry_after(exc))
    if isinstance(exc, FATAL_TYPES):
        return Verdict(True)
    return Verdict(False)


async def pause_before_retry(exc: BaseException) -> None:
    """Wait what a retryable error's `Retry-After` asks, before the engine retries (for engines without a delay)."""
    verdict = classify(exc)
    if not verdict.fatal and verdict.retry_after:
        await asyncio.sleep(min(verdict.retry_after, MAX_RETRY_AFTER))


def is_fatal(exc: BaseException) -> bool:
    """Whether an error must fail the run instead of being retried by the engine."""
    return classify(exc).fatal


def status_code(exc: BaseException) -> int | None:
    """The HTTP status an error carries: its own `status_code`, or its `response`'s (httpx, OpenAI SDK)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    headers = getattr(exc, "headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    return parse_retry_after(cast(Mapping[str, str], headers))


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date); `None` if absent or invalid."""
    lowered = {str(k).lower(): str(v) for k, v in _items(headers)}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    parsed = email.utils.parsedate_to_datetime(raw) if raw else None
    if parsed is None:
        return None
    return max(0.0, parsed.timestamp() - time.time())


def _items(headers: Any) -> list[tuple[Any, Any]]:
    try:
        return list(headers.items())
    except Exception:
        return []
