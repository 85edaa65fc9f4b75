"""`runs events RUN`: a run's live agent events read from its engine's record, without the agent's code.

The same records `DurableAgent.watch()` reads (see `durable_agents/_live.py`): a DBOS workflow's stream, a Temporal
workflow's log (served by a query, so a worker of its task queue must be up), a Prefect flow run's artifacts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic_ai.messages import AgentStreamEvent

from .._live import watch_records

__all__ = ["follow_events"]

POLL_SECONDS = 0.5


async def _dbos_records(run: str, system_database_url: str) -> AsyncIterator[str]:
    from ..dbos._live import client_records

    async for record in client_records(run, None, system_database_url, POLL_SECONDS):
        yield record


async def _temporal_records(run: str, address: str, namespace: str) -> AsyncIterator[str]:
    from temporalio.client import Client

    from ..temporal._live import live_records
    from ..temporal._plugin import DurableAgentsPlugin

    client = await Client.connect(address, namespace=namespace, plugins=[DurableAgentsPlugin()])
    async for record in live_records(run, client, POLL_SECONDS):
        yield record


async def _prefect_records(run: str) -> AsyncIterator[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.objects import FlowRun

    from ..prefect._agent import RUN_ID_TAG_PREFIX
    from ..prefect._live import live_records

    async def tagged(run_id: str) -> FlowRun | None:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[RUN_ID_TAG_PREFIX + run_id])), limit=1
            )
        return runs[0] if runs else None

    async for record in live_records(run, tagged, POLL_SECONDS):
        yield record


def records_of(engine: str, run: str, **options: Any) -> AsyncIterator[str]:
    """The raw live-event records of run `run` on `engine`, live until the run ends."""
    if engine == "dbos":
        return _dbos_records(run, options["system_database_url"])
    if engine == "temporal":
        return _temporal_records(run, options["address"], options["namespace"])
    return _prefect_records(run)


async def follow_events(
    records: AsyncIterator[str], *, after: int, idle_seconds: float | None
) -> AsyncIterator[tuple[int, AgentStreamEvent]]:
    """The events of `records` after offset `after`; with `idle_seconds`, stop when none came for that long."""
    events = watch_records(records, after)
    try:
        while True:
            try:
                if idle_seconds is None:
                    item = await anext(events)
                else:
                    item = await asyncio.wait_for(anext(events), idle_seconds)
            except (StopAsyncIteration, TimeoutError):
                return
            yield item
    finally:
        with contextlib.suppress(Exception):
            await events.aclose()  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
