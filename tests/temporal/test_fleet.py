"""A fleet: one workflow-only and two activity-only worker processes share a task queue.

Model activities receive only the delta of the message history (see `durable_agents._history`). Here they land on
processes that do not run the workflow, and alternate between two of them, so the activity side often does not
hold the run's history. The workflow history must stay about as small as with one combined worker, and each model
request must cost about one activity, not two.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from durable_agents.temporal import HistoryStats, history_stats
from durable_agents.temporal._history_source import recorded_exchanges

from . import workflows as w
from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]
K = 32
MODEL = f"growth{K}.model"
READY_TIMEOUT = 120.0  # three processes importing pydantic-ai and temporalio at once on a busy machine
RUN_TIMEOUT = 120.0


@dataclass
class FleetWorker:
    mode: str
    proc: subprocess.Popen[str]
    stderr: Path

    def describe(self) -> str:
        tail = self.stderr.read_text(errors="replace")[-2000:] if self.stderr.exists() else ""
        return f"{self.mode} worker (pid {self.proc.pid}) exited with code {self.proc.poll()}; stderr tail:\n{tail}"


@dataclass
class Fleet:
    task_queue: str
    workers: list[FleetWorker]

    def check_alive(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is not None:
                pytest.fail(worker.describe())


def _start(address: str, queue: str, mode: str, stderr: Path) -> FleetWorker:
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.temporal.fleet_worker", address, queue, mode],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    return FleetWorker(mode, proc, stderr)


def _wait_ready(worker: FleetWorker, deadline: float) -> None:
    stdout = worker.proc.stdout
    assert stdout is not None
    readable, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
    line = stdout.readline() if readable else ""  # EOF ("") when the process died
    if line.strip() != "ready":
        pytest.fail(f"{worker.mode} worker not ready within {READY_TIMEOUT:.0f} s (read {line!r}). {worker.describe()}")


@pytest.fixture
def fleet(temporal_env: WorkflowEnvironment, tmp_path: Path) -> Iterator[Fleet]:
    address = temporal_env.client.service_client.config.target_host
    queue = f"fleet-{uuid.uuid4().hex[:8]}"
    workers: list[FleetWorker] = []
    try:
        for i, mode in enumerate(("workflows", "activities", "activities")):
            workers.append(_start(address, queue, mode, tmp_path / f"worker{i}-{mode}.err"))
        deadline = time.monotonic() + READY_TIMEOUT
        for worker in workers:
            _wait_ready(worker, deadline)
        yield Fleet(queue, workers)
    finally:
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.kill()
            worker.proc.wait()
            assert worker.proc.stdout is not None
            worker.proc.stdout.close()


async def _result(handle: WorkflowHandle[Any, str], fleet: Fleet | None) -> str:
    """The workflow's result; fails as soon as a worker of the fleet dies instead of waiting for a timeout."""
    task = asyncio.ensure_future(handle.result())
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            while not task.done():
                if fleet is not None:
                    fleet.check_alive()
                await asyncio.wait({task}, timeout=0.5)
        return task.result()
    finally:
        task.cancel()


async def _run_growth(client: Client, queue: str, fleet: Fleet | None) -> tuple[WorkflowHandle[Any, str], HistoryStats]:
    handle = await client.start_workflow(w.GrowthWorkflow.run, K, id=new_id(), task_queue=queue)
    assert await _result(handle, fleet) == "done: " + ", ".join(f"r{i}" for i in range(K))
    return handle, await history_stats(handle)


async def test_fleet_history_stays_small(client: Client, fleet: Fleet) -> None:
    handle, stats = await _run_growth(client, fleet.task_queue, fleet)
    models = stats.activity_types.count(MODEL)
    # What a model activity that misses would read back: time one history read of this run.
    env = ActivityEnvironment(client)
    env.info = replace(env.info, workflow_id=handle.id, workflow_run_id=handle.result_run_id)
    started = time.perf_counter()
    exchanges = await env.run(recorded_exchanges, MODEL)
    fetch_ms = (time.perf_counter() - started) * 1000
    print(
        f"fleet K={K}: history {stats.bytes:,} bytes, {stats.events} events, {models} model activities "
        f"(inputs {stats.activity_input_bytes:,} B, results {stats.activity_result_bytes:,} B); "
        f"recorded_exchanges read {len(exchanges or [])} exchanges in {fetch_ms:.0f} ms"
    )
    assert exchanges is not None and len(exchanges) == models
    assert stats.bytes <= 150_000, f"fleet history is {stats.bytes:,} bytes ({models} model activities)"
    assert models <= K + 3, f"{models} model activities for {K + 1} model requests"


async def test_single_worker_for_comparison(client: Client, task_queue: str) -> None:
    _, stats = await _run_growth(client, task_queue, None)
    models = stats.activity_types.count(MODEL)
    print(f"one combined worker K={K}: history {stats.bytes:,} bytes, {stats.events} events, {models} model activities")
    assert models == K + 1
