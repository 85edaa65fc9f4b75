"""`durable-agents runs list/show --engine temporal` against a Temporal dev server."""

from __future__ import annotations

import json

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from durable_agents.exceptions import ConfigurationError, UnsupportedCapabilityError
from tests.temporal import workflows as w
from tests.temporal.conftest import client, new_id, task_queue, temporal_env  # noqa: F401  # fixtures

from ._support import cli

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]


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
