"""`check_replay` replays the server's recent histories against new workflow code and reports the first divergence."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.workflow import NondeterminismError

from durable_agents.exceptions import ReplayDivergenceError
from durable_agents.temporal import DurableAgentsPlugin, check_replay

from . import workflows as w
from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]


@workflow.defn(sandboxed=False)  # defined in a test module, which the sandbox should not re-import
class WaitingWorkflow:
    """An agent run, then a wait for a signal: a workflow still running when the check replays it."""

    def __init__(self) -> None:
        self.released = False

    @workflow.run
    async def run(self) -> str:
        output = (await w.loop_agent.run("go")).output
        await workflow.wait_condition(lambda: self.released)
        return output

    @workflow.signal
    def release(self) -> None:
        self.released = True


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


async def test_a_running_workflow_replays(client: Client) -> None:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[WaitingWorkflow], plugins=[DurableAgentsPlugin(w.loop_agent)]
    ):
        handle = await client.start_workflow(WaitingWorkflow.run, id=new_id(), task_queue=queue)
        for _ in range(200):  # until the agent run is over and the workflow waits
            events = (await handle.fetch_history()).events
            if sum(e.HasField("activity_task_completed_event_attributes") for e in events) == 2 * w.ROUNDS + 1:
                break
            await asyncio.sleep(0.05)
        query = f"WorkflowId = '{handle.id}' AND ExecutionStatus = 'Running'"
        for _ in range(100):
            if await client.count_workflows(query) == 1:
                break
            await asyncio.sleep(0.05)
        report = await check_replay(client, [WaitingWorkflow], query=query)
        assert report.ok and [workflow_id for workflow_id, _ in report.replayed] == [handle.id]
        await handle.signal(WaitingWorkflow.release)
        assert await handle.result() == "done: r0, r1, r2, r3"


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
