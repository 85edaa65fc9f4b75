"""`check_replay` replays the server's recent histories against new workflow code and reports the first divergence."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client
from temporalio.workflow import NondeterminismError

from durable_agents.exceptions import ReplayDivergenceError
from durable_agents.temporal import check_replay

from . import workflows as w
from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]


async def _recorded_runs(client: Client, task_queue: str) -> list[str]:
    ids = [new_id(), new_id()]
    await client.execute_workflow(w.LoopWorkflow.run, "go", id=ids[0], task_queue=task_queue)
    await client.execute_workflow(w.ParallelWorkflow.run, "go", id=ids[1], task_queue=task_queue)
    for _ in range(100):  # visibility lags the runs a little
        if await client.count_workflows(" OR ".join(f"WorkflowId = '{i}'" for i in ids)) == len(ids):
            break
        await asyncio.sleep(0.05)
    return ids


async def test_todays_code_replays_the_recorded_runs(client: Client, task_queue: str) -> None:
    ids = await _recorded_runs(client, task_queue)
    report = await check_replay(client, [w.LoopWorkflow, w.ParallelWorkflow])
    assert report.ok
    assert report.query == "WorkflowType = 'LoopWorkflow' OR WorkflowType = 'ParallelWorkflow'"
    assert set(ids) <= {workflow_id for workflow_id, _ in report.replayed}


async def test_a_changed_unit_name_is_reported_with_the_workflow(client: Client, task_queue: str) -> None:
    ids = await _recorded_runs(client, task_queue)
    # `ChangedLoopWorkflow` registers as `LoopWorkflow` but runs another agent: its units have other names.
    with pytest.raises(ReplayDivergenceError, match="does not replay") as caught:
        await check_replay(client, [w.ChangedLoopWorkflow], query=f"WorkflowId = '{ids[0]}'")
    failure = caught.value.report.failure
    assert (failure.workflow_id, failure.workflow_type) == (ids[0], "LoopWorkflow")
    assert isinstance(failure.error, NondeterminismError)
    report = await check_replay(client, [w.ChangedLoopWorkflow], raise_on_divergence=False)
    assert not report.ok and len(report.replayed) == 1  # stops at the first divergence
