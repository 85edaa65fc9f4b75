"""Operating agents on Temporal: heartbeats against slow models and dead workers, agents no worker registers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin
from durable_agents.testing import CallCounter

from . import workflows as w
from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]


def _attempts(counter: Path) -> list[tuple[int, int, float, int]]:
    """`(step, attempt, start time, worker pid)` of every model request the slow agents recorded."""
    rows = [line.split(":") for line in CallCounter(counter).calls]
    return [(int(step), int(attempt), float(start), int(pid)) for _, step, attempt, start, pid in rows]


@pytest.mark.slow
async def test_a_model_slower_than_the_heartbeat_timeout_is_paid_once(
    client: Client, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = tmp_path / "calls.txt"
    monkeypatch.setenv("DURABLE_AGENTS_COUNTER", str(counter))
    handle = await client.start_workflow(w.SlowWorkflow.run, "slowbeat", id=new_id(), task_queue=task_queue)
    # Without heartbeats every attempt times out after 2 s and the run never ends.
    output = await asyncio.wait_for(handle.result(), 40)
    assert output == "answered after 1 tool calls"
    assert [(step, attempt) for step, attempt, *_ in _attempts(counter)] == [(0, 1), (1, 1)]


def _start_worker(address: str, queue: str, counter: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DURABLE_AGENTS_COUNTER": str(counter), "PYTHONPATH": str(ROOT)}
    env.pop("DURABLE_AGENTS_CRASH", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.temporal.crash_worker", address, queue],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


async def _wait_for_attempts(counter: Path, n: int, timeout: float) -> list[tuple[int, int, float, int]]:
    deadline = time.monotonic() + timeout
    while len(attempts := _attempts(counter)) < n:
        assert time.monotonic() < deadline, f"{n} model requests expected, saw {attempts}"
        await asyncio.sleep(0.1)
    return attempts


@pytest.mark.slow
async def test_a_killed_worker_is_noticed_after_the_heartbeat_timeout(
    temporal_env: WorkflowEnvironment, client: Client, tmp_path: Path
) -> None:
    address = temporal_env.client.service_client.config.target_host
    queue = f"ops-{uuid.uuid4().hex[:8]}"
    counter = tmp_path / "calls.txt"
    # Two workers, so the time measured is the server noticing the death, not a new process starting.
    workers = [_start_worker(address, queue, counter) for _ in range(2)]
    try:
        for proc in workers:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        handle = await client.start_workflow(w.SlowWorkflow.run, "slowcrash", id=new_id(), task_queue=queue)
        [(_, _, _, pid)] = await _wait_for_attempts(counter, 1, 30)
        # Well past the 3 s heartbeat timeout and still inside the 30 s request: the beats keep its one attempt alive.
        await asyncio.sleep(6)
        assert len(_attempts(counter)) == 1
        [victim] = [proc for proc in workers if proc.pid == pid]
        victim.kill()
        killed_at = time.time()
        attempts = await _wait_for_attempts(counter, 2, 60)
        output = await asyncio.wait_for(handle.result(), 30)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
    assert output == "answered after 0 tool calls"
    assert [(step, attempt) for step, attempt, *_ in attempts] == [(0, 1), (0, 2)]
    assert attempts[1][3] != pid
    kill_to_retry = attempts[1][2] - killed_at
    print(f"kill to retry: {kill_to_retry:.1f} s")
    # Heartbeat timeout (3 s) + first retry interval (1 s) + polling: far below the start-to-close timeout.
    assert kill_to_retry < 3 + 10


async def test_a_workflow_that_declares_its_agent_needs_no_plugin_listing(client: Client) -> None:
    queue = f"ops-{uuid.uuid4().hex[:8]}"
    # The client's plugin (no agents) configures the worker; only the workflow names the agent.
    async with Worker(client, task_queue=queue, workflows=[w.DeclaredWorkflow]):
        output = await client.execute_workflow(
            w.DeclaredWorkflow.run, id=new_id(), task_queue=queue, execution_timeout=timedelta(seconds=30)
        )
    assert output == "done: r0"


async def _orphan_failure(client: Client, worker: Worker, queue: str) -> tuple[ApplicationError, float]:
    async with worker:
        started = time.monotonic()
        handle = await client.start_workflow(
            w.OrphanWorkflow.run, id=new_id(), task_queue=queue, execution_timeout=timedelta(seconds=60)
        )
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause, time.monotonic() - started


async def test_a_unit_no_worker_polls_for_fails_the_run_with_a_typed_error(client: Client) -> None:
    queue = f"ops-{uuid.uuid4().hex[:8]}"
    # No agent anywhere: the worker polls no activities, so the model activity is never started.
    worker = Worker(client, task_queue=queue, workflows=[w.OrphanWorkflow])
    error, seconds = await _orphan_failure(client, worker, queue)
    assert error.type == "UnitNotRegisteredError"
    assert "'orphan.model' of agent 'orphan'" in error.message
    assert "schedule_to_start_timeout (0:00:02)" in error.message
    assert "@uses_agents" in error.message
    assert seconds < 15


async def test_a_unit_the_polling_workers_lack_fails_the_run_with_a_typed_error(client: Client) -> None:
    queue = f"ops-{uuid.uuid4().hex[:8]}"
    # The worker runs another agent's activities: it picks the activity up and cannot run it.
    worker = Worker(client, task_queue=queue, workflows=[w.OrphanWorkflow], plugins=[DurableAgentsPlugin(w.loop_agent)])
    error, seconds = await _orphan_failure(client, worker, queue)
    assert error.type == "UnitNotRegisteredError"
    assert "'orphan.model' of agent 'orphan'" in error.message
    assert seconds < 15
