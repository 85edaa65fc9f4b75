"""Live events on DBOS: each workflow's stream `durable_agents.events`, read by DBOS or by a `DBOSClient`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dbos import DBOSClient
from dbos._error import DBOSNonExistentWorkflowError

from ..exceptions import UnknownRunError

__all__ = ["LIVE_EVENTS_STREAM", "WATCH_FIX", "client_records"]

LIVE_EVENTS_STREAM = "durable_agents.events"
"""The DBOS stream (key) of a workflow that holds the live events records of its agent runs."""

WATCH_FIX = "pass the workflow id of the run (the `run_id=` given to `run()`)"


async def client_records(
    run_id: str, client: DBOSClient | None, system_database_url: str | None, poll_interval: float
) -> AsyncIterator[str]:
    """The records of workflow `run_id`, read with `client`, else with a client on `system_database_url`."""
    made = None
    if client is None:
        made = client = await asyncio.to_thread(DBOSClient, system_database_url=system_database_url)
    try:
        try:
            await client.retrieve_workflow_async(run_id)
        except DBOSNonExistentWorkflowError as exc:
            raise UnknownRunError(run_id, "dbos", WATCH_FIX) from exc
        async for record in client.read_stream_async(run_id, LIVE_EVENTS_STREAM, polling_interval_sec=poll_interval):
            yield record
    finally:
        if made is not None:
            await asyncio.to_thread(made.destroy)
