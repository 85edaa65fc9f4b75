"""Models on Temporal: built only in activities, overridden the way pydantic-ai users test, selected by name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pydantic_ai import Agent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from durable_agents.temporal import TemporalAgent, history_stats
from durable_agents.testing import FakeOpenAIServer, record_units, tool_loop_model

from . import workflows as w
from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]


async def test_a_workflow_only_worker_without_credentials_runs_a_model_string_agent(
    temporal_env: WorkflowEnvironment, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = temporal_env.client.service_client.config.target_host
    queue = f"split-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    workflows_only = subprocess.Popen(
        [sys.executable, "-m", "tests.temporal.workflow_worker", address, queue],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert workflows_only.stdout is not None
        assert await asyncio.to_thread(workflows_only.stdout.readline) == "ready\n"
        with FakeOpenAIServer() as server:
            # Only this process, which runs the activities, has the credentials (and the server's URL).
            monkeypatch.setenv("OPENAI_API_KEY", "test-key")
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            async with Worker(client, task_queue=queue, activities=w.keyless_agent.temporal_activities):
                handle = await client.start_workflow(w.AgentWorkflow.run, "keyless", id=new_id(), task_queue=queue)
                output = await asyncio.wait_for(handle.result(), 60)
    finally:
        workflows_only.kill()
        workflows_only.wait()
        assert workflows_only.stdout is not None
        workflows_only.stdout.close()
    assert output == "echo: go"
    assert [r["model"] for r in server.requests] == ["gpt-4o"]
    assert (await history_stats(handle)).activity_types == ["keyless.model"]


async def test_override_of_the_wrapper_reaches_workflows_of_a_worker_in_this_process(
    client: Client, task_queue: str
) -> None:
    # The worker started before the block (the fixture's), as in a test suite with a shared worker.
    with w.loop_agent.override(model=tool_loop_model(0, final="overridden")), record_units() as units:
        handle = await client.start_workflow(w.LoopWorkflow.run, "go", id=new_id(), task_queue=task_queue)
        assert await handle.result() == "overridden"
    assert units.labels == ["loop.model"]
    # Once the block is left, workflows use the agent's own model again.
    handle = await client.start_workflow(w.LoopWorkflow.run, "go", id=new_id(), task_queue=task_queue)
    assert await handle.result() == "done: r0, r1, r2, r3"


async def test_outside_a_workflow_registered_names_and_the_first_registered_model_work() -> None:
    models = {"first": tool_loop_model(0, final="first"), "second": tool_loop_model(0, final="second")}
    with_model = TemporalAgent(w.build_agent("bare_models", 1), models=models)
    assert (await with_model.run("go", model="second")).output == "second"
    assert (await with_model.run("go")).output == "done: r0"
    modelless = TemporalAgent(Agent(None, name="modelless"), models=models)
    assert (await modelless.run("go")).output == "first"
