"""Live events on Prefect: each record an artifact of the flow run, read back by polling the Prefect API.

Prefect has no stream a flow can write and a client can follow, so this is weaker than on DBOS or Temporal: every
record is one API call that creates an artifact (of type `durable-agents-events`, shown in the flow run's
Artifacts tab), and a watcher reads all of the run's records anew on each poll, ordered by the time the server
created them. A resumed or retried flow run publishes its agent-level records again; watchers skip them by key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType
from prefect.client.schemas.objects import Artifact, FlowRun
from prefect.client.schemas.sorting import ArtifactSort
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import ObjectNotFound

from ..exceptions import ConfigurationError, UnknownRunError

__all__ = ["LIVE_EVENTS_ARTIFACT_TYPE", "live_records", "publish_live"]

LIVE_EVENTS_ARTIFACT_TYPE = "durable-agents-events"
"""The type of the artifacts that hold a flow run's live events records."""

_PAGE = 200


async def publish_live(record: str) -> None:
    """Create the record's artifact on the flow run (and task run) the caller runs in."""
    task = TaskRunContext.get()
    flow = FlowRunContext.get()
    if task is not None:
        flow_run_id, task_run_id = task.task_run.flow_run_id, task.task_run.id
    elif flow is not None and flow.flow_run is not None:
        flow_run_id, task_run_id = flow.flow_run.id, None
    else:
        raise ConfigurationError("Live events were published outside a Prefect flow run.")  # pragma: no cover
    async with get_client() as client:
        await client.create_artifact(
            ArtifactCreate(
                type=LIVE_EVENTS_ARTIFACT_TYPE, data=record, flow_run_id=flow_run_id, task_run_id=task_run_id
            )
        )


async def live_records(
    run_id: str, find_tagged: Callable[[str], Awaitable[FlowRun | None]], poll_interval: float
) -> AsyncIterator[str]:
    """The records of a flow run (by flow run id, or by the `run_id=` its `run()` was given), polling while it runs."""
    async with get_client() as client:
        flow_run = await _flow_run(client, run_id, find_tagged)
        sent = 0
        closed = False
        while True:
            records = await _records(client, flow_run.id)
            for record in records[sent:]:
                yield record
            if len(records) > sent:
                sent = len(records)
                continue
            if closed:
                return
            state = (await client.read_flow_run(flow_run.id)).state
            if state is not None and state.is_final():
                closed = True  # one more read: records may have come between the last one and the end
                continue
            await asyncio.sleep(poll_interval)


async def _flow_run(
    client: PrefectClient, run_id: str, find_tagged: Callable[[str], Awaitable[FlowRun | None]]
) -> FlowRun:
    try:
        return await client.read_flow_run(UUID(run_id))
    except (ValueError, ObjectNotFound):
        pass
    flow_run = await find_tagged(run_id)
    if flow_run is None:
        raise UnknownRunError(run_id, "prefect", "pass the `run_id=` given to `run()`, or the flow run id")
    return flow_run


async def _records(client: PrefectClient, flow_run_id: UUID) -> list[str]:
    found = ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
        type=ArtifactFilterType(any_=[LIVE_EVENTS_ARTIFACT_TYPE]),
    )
    artifacts: list[Artifact] = []
    while True:
        page = await client.read_artifacts(
            artifact_filter=found, sort=ArtifactSort.CREATED_DESC, limit=_PAGE, offset=len(artifacts)
        )
        artifacts.extend(page)
        if len(page) < _PAGE:
            break
    unique = {artifact.id: artifact for artifact in artifacts}  # a page may repeat one that a newer one pushed down
    ordered = sorted(unique.values(), key=_created)
    return [str(artifact.data) for artifact in ordered]


def _created(artifact: Artifact) -> float:
    return artifact.created.timestamp() if artifact.created is not None else 0.0
