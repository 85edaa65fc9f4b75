"""Heartbeats while a unit's activity runs, so a `heartbeat_timeout` detects a dead worker and not a slow model.

Units do their I/O in pydantic-ai and provider SDKs, which know nothing of Temporal; instead of heartbeating
from inside them, the activity beats from a background task for as long as the unit's body runs. A beat every
third of the heartbeat timeout leaves two beats of slack (temporalio throttles what it sends to the server).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from datetime import timedelta

from temporalio import activity

__all__ = ["HEARTBEAT_INTERVAL_WITHOUT_TIMEOUT", "heartbeating"]

HEARTBEAT_INTERVAL_WITHOUT_TIMEOUT = timedelta(seconds=10)
"""Beat interval of an activity without a heartbeat timeout: beats still deliver cancellation to it."""


def heartbeat_interval(timeout: timedelta | None) -> float:
    """Seconds between beats for an activity with this heartbeat timeout."""
    if timeout is None or timeout <= timedelta(0):
        return HEARTBEAT_INTERVAL_WITHOUT_TIMEOUT.total_seconds()
    return timeout.total_seconds() / 3


async def _beat(interval: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncGenerator[None]:
    """Heartbeat the current activity until the block exits; outside an activity, do nothing."""
    if not activity.in_activity():
        yield
        return
    beats = asyncio.create_task(_beat(heartbeat_interval(activity.info().heartbeat_timeout)))
    try:
        yield
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
