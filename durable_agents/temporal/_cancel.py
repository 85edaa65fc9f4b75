"""Awaiting an activity or a child workflow so that cancelling the workflow ends the wait at once.

temporalio's handle of an activity or child workflow takes a cancellation of its task as a request: it sends the
cancel command and keeps waiting for the server's answer, which only arrives in the next workflow activation. An
`anyio` cancel scope (pydantic-ai runs an agent's graph in `anyio` task groups) delivers its cancellation again on
every turn of the event loop until the cancelled task is done, so the handle is cancelled, waits, is cancelled
again... and the activation never ends: the workflow task fails with the deadlock detector (TMPRL1101) at every
attempt, and the workflow never ends cancelled. Awaiting the handle through a shield breaks that loop: the first
cancellation cancels the handle once, waits (shielded from `anyio`'s repeated cancellations) until the handle is
done, as its `cancellation_type` says, and then goes on up the caller's stack, as any cancellation does.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

import anyio

__all__ = ["await_handle"]

T = TypeVar("T")


async def await_handle(handle: asyncio.Task[T]) -> T:
    """The result of `handle` (an activity's or child workflow's); a cancellation cancels it once and goes on."""
    try:
        return await asyncio.shield(handle)
    except asyncio.CancelledError:
        handle.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([handle])
        raise
