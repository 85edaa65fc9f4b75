"""Live events on Temporal: a workflow-side log served by a query, fed by the workflow and by signals of activities.

The workflow appends the records of agent-level events itself: the log is workflow state, rebuilt the same on
every replay, so it costs no history event. A model activity sends its records as signals (one history event per
`delta_interval` batch). A watcher polls the query `__durable_agents_events` (queries add nothing to the history)
and, when nothing new came, asks the server whether the workflow has closed; a closed workflow is still queried
(a worker replays it) until its log is read to the end.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from ..exceptions import UnknownRunError

__all__ = ["LIVE_EVENTS_QUERY", "LIVE_EVENTS_SIGNAL", "live_records", "publish_live", "start_live_log"]

LIVE_EVENTS_QUERY = "__durable_agents_events"
"""The query that answers a workflow's live events records from an offset: `query(LIVE_EVENTS_QUERY, offset)`."""
LIVE_EVENTS_SIGNAL = "__durable_agents_events_publish"
"""The signal by which a model activity adds a record to its workflow's log."""

_MAX_QUERY_BYTES = 1_000_000  # an answer stays well under the server's 2 MiB payload limit

# One log per workflow run (and replay), keyed by the event loop Temporal creates for each.
_LOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[str]] = weakref.WeakKeyDictionary()


def start_live_log() -> list[str]:
    """The log of the calling workflow run; the first call registers its query and signal handlers."""
    loop = asyncio.get_running_loop()
    log = _LOGS.get(loop)
    if log is None:
        log = _LOGS[loop] = []
        records = log

        def answer(offset: int) -> list[str]:
            batch: list[str] = []
            size = 0
            for record in records[max(0, offset) :]:
                if batch and size + len(record) > _MAX_QUERY_BYTES:
                    break
                batch.append(record)
                size += len(record)
            return batch

        workflow.set_query_handler(LIVE_EVENTS_QUERY, answer)  # pyright: ignore[reportUnknownMemberType]
        workflow.set_signal_handler(LIVE_EVENTS_SIGNAL, records.append)  # pyright: ignore[reportUnknownMemberType]
    return log


async def publish_live(record: str) -> None:
    """Add a record: appended by the workflow, signalled by an activity."""
    if workflow.in_workflow():
        start_live_log().append(record)
        return
    info = activity.info()
    handle = activity.client().get_workflow_handle(info.workflow_id or "", run_id=info.workflow_run_id)
    await handle.signal(LIVE_EVENTS_SIGNAL, record)


async def live_records(run_id: str, client: Client, poll_interval: float) -> AsyncIterator[str]:
    """The records of workflow `run_id` (its latest run), polling every `poll_interval` seconds while it runs."""
    handle = client.get_workflow_handle(run_id)
    sent = 0
    closed = False
    while True:
        try:
            records: list[str] = await handle.query(LIVE_EVENTS_QUERY, sent, result_type=list[str])
        except WorkflowQueryFailedError:
            records = []  # no agent run has started in the workflow yet
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise UnknownRunError(run_id, "temporal", "pass the workflow id of the run") from exc
            if exc.status is not RPCStatusCode.FAILED_PRECONDITION:  # the first workflow task has not completed
                raise
            records = []
        for record in records:
            yield record
        sent += len(records)
        if records:
            continue
        if closed:
            return
        description = await handle.describe()
        if description.status is not WorkflowExecutionStatus.RUNNING:
            closed = True  # one more query: records may have come between the last one and the close
            continue
        await asyncio.sleep(poll_interval)
