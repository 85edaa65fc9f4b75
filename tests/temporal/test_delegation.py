"""Sub-agents on Temporal: the delegate's run is a child workflow of the parent's, its usage adds up, limits hold."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin
from durable_agents.testing import CRASH_ENV
from durable_agents.testing._crash import CRASH_EXIT_CODE
from tests.parity.delegation_app import CALLS_ENV, EXPECTED, PROMPT, build

from .conftest import stop_workers
from .delegation_workflows import BOOKING, STUCK_BOOKING, BookingWorkflow, StuckBookingWorkflow

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "calls"
    monkeypatch.setenv(CALLS_ENV, str(path))
    return path


@pytest.fixture
async def queue(client: Client) -> AsyncIterator[str]:
    """A worker given only the booking agent: the plugin finds the search agent its tool runs."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[BookingWorkflow], plugins=[DurableAgentsPlugin(BOOKING)]):
        yield queue


async def test_the_delegate_runs_as_a_child_workflow_and_usage_adds_up(client: Client, queue: str, calls: Path) -> None:
    bare_booking, _ = build(None)
    bare = await bare_booking.run(PROMPT)
    calls.unlink()
    workflow_id = f"trip-{uuid.uuid4().hex[:8]}"
    result = await client.execute_workflow(
        BookingWorkflow.run, id=workflow_id, task_queue=queue, execution_timeout=timedelta(seconds=30)
    )
    assert result["output"] == bare.output == EXPECTED
    assert result["usage"] == dataclasses.asdict(bare.usage)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    started = [
        e.start_child_workflow_execution_initiated_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]
    assert [(s.workflow_type.name, s.workflow_id) for s in started] == [
        ("search_agent.run", f"{workflow_id}/search_agent/1")
    ]
    activities = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert activities == ["booking_agent.model", "booking_agent.model"]  # the search tool ran in the workflow
    child = await client.get_workflow_handle(f"{workflow_id}/search_agent/1").describe()
    assert child.parent_id == workflow_id
    assert calls.read_text().splitlines() == ["booking:0", "search:0", "search:1", "search:2", "booking:1"]


async def test_a_usage_limit_exceeded_in_the_delegate_fails_the_run_once(
    client: Client, queue: str, calls: Path
) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await client.execute_workflow(BookingWorkflow.run, 2, id=f"trip-{uuid.uuid4().hex[:8]}", task_queue=queue)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UsageLimitExceeded", cause
    assert calls.read_text().splitlines() == ["booking:0", "search:0"]


def _start_worker(address: str, queue: str, calls: Path, crash: str | None) -> subprocess.Popen[str]:
    env = {**os.environ, CALLS_ENV: str(calls), "PYTHONPATH": str(ROOT)}
    env.pop(CRASH_ENV, None)
    if crash:
        env[CRASH_ENV] = crash
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.temporal.delegation_worker", address, queue],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.slow
async def test_a_worker_killed_in_the_delegates_second_tool_resumes_without_resending_model_requests(
    temporal_env: WorkflowEnvironment, client: Client, calls: Path
) -> None:
    bare_booking, _ = build(None)
    bare = await bare_booking.run(PROMPT)
    calls.unlink()
    address = temporal_env.client.service_client.config.target_host
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    first = _start_worker(address, queue, calls, crash="search_agent.toolset.agent.call/find@2")
    second: subprocess.Popen[str] | None = None
    try:
        handle = await client.start_workflow(
            BookingWorkflow.run,
            id=f"trip-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            execution_timeout=timedelta(seconds=90),
        )
        assert await asyncio.to_thread(first.wait, 60) == CRASH_EXIT_CODE
        assert calls.read_text().splitlines() == ["booking:0", "search:0", "search:1"]
        second = _start_worker(address, queue, calls, crash=None)
        result = await asyncio.wait_for(handle.result(), 80)
    finally:
        stop_workers(first, second)
    assert result["output"] == bare.output == EXPECTED
    assert result["usage"] == dataclasses.asdict(bare.usage)
    # Every model request of parent and child was sent once: none completed before the crash was sent again.
    assert calls.read_text().splitlines() == ["booking:0", "search:0", "search:1", "search:2", "booking:1"]


async def _status_of(client: Client, workflow_id: str, status: WorkflowExecutionStatus, within: float) -> None:
    """Wait until the workflow `workflow_id` is in `status`, for at most `within` seconds (the acceptance bound)."""
    handle = client.get_workflow_handle(workflow_id)
    async with asyncio.timeout(within):
        while (await handle.describe()).status != status:
            await asyncio.sleep(0.2)


async def test_cancelling_the_parent_cancels_the_child_waiting_on_an_activity(client: Client) -> None:
    queue, plugin = f"tq-{uuid.uuid4().hex[:8]}", DurableAgentsPlugin(STUCK_BOOKING)
    async with Worker(client, task_queue=queue, workflows=[StuckBookingWorkflow], plugins=[plugin]):
        workflow_id = f"stuck-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            StuckBookingWorkflow.run, id=workflow_id, task_queue=queue, execution_timeout=timedelta(seconds=90)
        )
        child_id = f"{workflow_id}/stuck_search/1"
        # The child is waiting on its model activity, which no worker polls.
        async with asyncio.timeout(30):
            while True:
                try:
                    history = await client.get_workflow_handle(child_id).fetch_history()
                except RPCError:  # not started yet
                    history = None
                if history is not None and any(
                    e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in history.events
                ):
                    break
                await asyncio.sleep(0.2)
        await handle.cancel()
        await _status_of(client, workflow_id, WorkflowExecutionStatus.CANCELED, 30)
        await _status_of(client, child_id, WorkflowExecutionStatus.CANCELED, 30)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert isinstance(failure.value.cause, CancelledError), failure.value.cause
        for wf in (workflow_id, child_id):
            history = await client.get_workflow_handle(wf).fetch_history()
            failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
            assert not failed, (wf, [e.workflow_task_failed_event_attributes.failure.message for e in failed])
