"""A worker process killed inside a tool activity; a new worker process finishes the workflow."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from durable_agents.temporal import history_stats
from durable_agents.testing import CallCounter
from durable_agents.testing._crash import CRASH_EXIT_CODE

from . import workflows as w
from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]


def _start_worker(address: str, queue: str, counter: Path, crash: str | None) -> subprocess.Popen[str]:
    env = {**os.environ, "DURABLE_AGENTS_COUNTER": str(counter), "PYTHONPATH": str(ROOT)}
    env.pop("DURABLE_AGENTS_CRASH", None)
    if crash:
        env["DURABLE_AGENTS_CRASH"] = crash
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.temporal.crash_worker", address, queue],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


async def test_worker_killed_in_tool_two_of_four_resumes_on_a_new_worker(
    temporal_env: WorkflowEnvironment, client: Client, tmp_path: Path
) -> None:
    address = temporal_env.client.service_client.config.target_host
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    counter = tmp_path / "model_calls.txt"
    first = _start_worker(address, queue, counter, crash="crash.toolset.agent.call/step@2")
    second: subprocess.Popen[str] | None = None
    try:
        handle = await client.start_workflow(w.AgentWorkflow.run, "crash", id=new_id(), task_queue=queue)
        code = await asyncio.to_thread(first.wait, 60)
        assert code == CRASH_EXIT_CODE
        # Two model requests completed before the crash, in the dead worker.
        assert CallCounter(counter).calls == ["model:0", "model:1"]
        second = _start_worker(address, queue, counter, crash=None)
        output = await asyncio.wait_for(handle.result(), 60)
    finally:
        for proc in (first, second):
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                assert proc.stdout is not None
                proc.stdout.close()
    assert output == "done: r0, r1, r2, r3"
    # Every model request ran exactly once: none completed before the crash was executed again.
    assert CallCounter(counter).calls == [f"model:{i}" for i in range(5)]
    # The killed tool activity is retried in place. The new worker's history cache is empty, but it replays the
    # workflow in its own process, so its model activities read the history from the workflow's live log: no resend.
    model, call = "crash.model", "crash.toolset.agent.call"
    stats = await history_stats(handle)
    assert stats.activity_types == [model, call, model, call, model, call, model, call, model]
