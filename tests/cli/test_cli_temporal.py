"""`durable-agents runs list/show --engine temporal` against a Temporal dev server."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from pydantic_ai import Agent
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from durable_agents.exceptions import ConfigurationError, UnsupportedCapabilityError
from durable_agents.temporal import ActivityConfig, DurableAgentsPlugin, TemporalAgent
from durable_agents.testing import tool_loop_model
from tests.temporal import workflows as w
from tests.temporal.conftest import client, new_id, task_queue, temporal_env  # noqa: F401  # fixtures

from ._support import cli

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]

FLAKY: list[int] = []


def _local_agent() -> TemporalAgent[None, str]:
    agent = Agent(tool_loop_model(2), name="clilocal")

    @agent.tool_plain
    async def step(i: int) -> str:
        FLAKY.append(i)
        if FLAKY.count(0) == 1:
            raise RuntimeError("flaky once")
        return f"r{i}"

    return TemporalAgent(
        agent,
        local_activity_tools=["step"],
        activity_config=ActivityConfig(retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10))),
    )


local_agent = _local_agent()


def _live_agent() -> TemporalAgent[None, str]:
    agent = Agent(tool_loop_model(2), name="clilive")

    @agent.tool_plain
    async def step(i: int) -> str:
        return f"r{i}"

    return TemporalAgent(agent, live_events=True)


live_agent = _live_agent()
AGENTS = {agent.name: agent for agent in (local_agent, live_agent)}


@workflow.defn(sandboxed=False)  # defined in a test module, which the sandbox should not re-import
class CliAgentWorkflow:
    @workflow.run
    async def run(self, agent_name: str) -> str:
        return (await AGENTS[agent_name].run("go")).output


@asynccontextmanager
async def _worker(temporal: Client, agent: TemporalAgent[None, str]) -> AsyncIterator[str]:
    """A worker of `CliAgentWorkflow` and `agent` on a fresh task queue, while the block runs; yields the queue."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(temporal, task_queue=queue, workflows=[CliAgentWorkflow], plugins=[DurableAgentsPlugin(agent)]):
        yield queue


async def test_runs_events_prints_a_workflows_live_events(
    client: Client,  # noqa: F811
    temporal_env: WorkflowEnvironment,  # noqa: F811
) -> None:
    address = temporal_env.client.service_client.config.target_host
    workflow_id = new_id()
    async with _worker(client, live_agent) as queue:
        await client.execute_workflow(CliAgentWorkflow.run, "clilive", id=workflow_id, task_queue=queue)
        # A closed workflow's log is read by a query, which a worker of its task queue answers.
        expected = [(o, e.event_kind) async for o, e in live_agent.watch(workflow_id, client=client)]
        printed, out = await cli("runs", "events", workflow_id, "-e", "temporal", "--address", address, "--follow")
    assert any(kind == "function_tool_call" for _, kind in expected)
    assert printed == len(expected)
    lines = [line.split() for line in out.splitlines() if line.strip() and not line.endswith("events")]
    assert [(int(words[0]), words[1].rstrip(":")) for words in lines] == expected
    with pytest.raises(ConfigurationError, match="no run 'nope' to watch"):
        await cli("runs", "events", "nope", "--engine", "temporal", "--address", address)


async def test_workflows_that_ran_an_agent_are_listed_and_shown_with_their_activities(
    client: Client,  # noqa: F811
    task_queue: str,  # noqa: F811
    temporal_env: WorkflowEnvironment,  # noqa: F811
) -> None:
    address = temporal_env.client.service_client.config.target_host
    workflow_id = new_id()
    await client.execute_workflow(w.LoopWorkflow.run, "go", id=workflow_id, task_queue=task_queue)

    rows, out = await cli("runs", "list", "--engine", "temporal", "--address", address)
    assert (workflow_id, "loop", "COMPLETED") in [(r.run_id, r.agent, r.status) for r in rows]
    assert workflow_id in out and "COMPLETED" in out

    rows, _ = await cli("runs", "list", "--engine", "temporal", "--address", address, "--agent", "nobody")
    assert rows == []

    detail, out = await cli("runs", "show", workflow_id, "--engine", "temporal", "--address", address)
    expected = ["loop.model", "loop.toolset.agent.call"] * w.ROUNDS + ["loop.model"]
    assert [u.name for u in detail.units] == expected
    assert all(u.status == "COMPLETED" and u.attempts == 1 for u in detail.units)
    assert all(u.input_bytes and u.output_bytes and u.duration is not None for u in detail.units)
    assert detail.facts["workflow type"] == "LoopWorkflow" and detail.run.agent == "loop"
    assert "loop.toolset.agent.call" in out

    _, out = await cli("runs", "show", workflow_id, "-e", "temporal", "--address", address, "--format", "json")
    assert len(json.loads(out)["units"]) == len(expected)

    with pytest.raises(UnsupportedCapabilityError, match=r"Temporal has no resume"):
        await cli("runs", "resume", workflow_id, "--engine", "temporal", "--address", address)
    with pytest.raises(ConfigurationError, match=r"has no workflow 'nope'"):
        await cli("runs", "show", "nope", "--engine", "temporal", "--address", address)


async def test_local_activities_are_shown_with_their_attempts(
    client: Client,  # noqa: F811
    temporal_env: WorkflowEnvironment,  # noqa: F811
) -> None:
    address = temporal_env.client.service_client.config.target_host
    workflow_id = new_id()
    async with _worker(client, local_agent) as queue:
        assert (
            await client.execute_workflow(CliAgentWorkflow.run, "clilocal", id=workflow_id, task_queue=queue)
            == "done: r0, r1"
        )

    detail, _ = await cli("runs", "show", workflow_id, "--engine", "temporal", "--address", address)
    assert [(u.name, u.status, u.attempts) for u in detail.units] == [
        ("clilocal.model", "COMPLETED", 1),
        ("clilocal.toolset.agent.call", "COMPLETED (local)", 2),
        ("clilocal.model", "COMPLETED", 1),
        ("clilocal.toolset.agent.call", "COMPLETED (local)", 1),
        ("clilocal.model", "COMPLETED", 1),
    ]
    assert all(u.output_bytes and u.duration is not None for u in detail.units)
