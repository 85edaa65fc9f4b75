"""Tools chosen with `local_activity_tools` run as local activities: no activity task on the server, same results."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from pydantic_ai import Agent
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from durable_agents.exceptions import ConfigurationError
from durable_agents.temporal import ActivityConfig, DurableAgentsPlugin, TemporalAgent
from durable_agents.testing import tool_loop_model

from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]

ROUNDS = 3
ATTEMPTS: list[int] = []


def _agent(name: str) -> Agent[None, str]:
    agent = Agent(tool_loop_model(ROUNDS), name=name)

    @agent.tool_plain
    async def step(i: int) -> str:
        ATTEMPTS.append(i)
        if i == 1 and ATTEMPTS.count(1) == 1:
            raise RuntimeError("flaky once")  # a local activity is retried like any activity
        return f"r{i}"

    @agent.tool_plain
    async def other(x: int) -> int:
        return x

    return agent


local_agent = TemporalAgent(
    _agent("local"),
    local_activity_tools=["step"],
    activity_config=ActivityConfig(retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10))),
)
all_local_agent = TemporalAgent(_agent("alllocal"), local_activity_tools="all")


@workflow.defn(sandboxed=False)  # defined in a test module, which the sandbox should not re-import
class LocalWorkflow:
    @workflow.run
    async def run(self, everything: bool) -> str:
        return (await (all_local_agent if everything else local_agent).run("go")).output


@pytest.mark.parametrize("everything", [False, True])
async def test_local_tools_leave_no_activity_task_on_the_server(client: Client, everything: bool) -> None:
    ATTEMPTS.clear()
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[LocalWorkflow],
        plugins=[DurableAgentsPlugin(local_agent, all_local_agent)],
    ):
        handle = await client.start_workflow(LocalWorkflow.run, everything, id=new_id(), task_queue=queue)
        assert await handle.result() == "done: r0, r1, r2"
    assert ATTEMPTS == [0, 1, 1, 2]
    events = (await handle.fetch_history()).events
    name = "alllocal" if everything else "local"
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == [f"{name}.model"] * (ROUNDS + 1)  # only the model requests went through the server
    markers = [e for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert len(markers) == ROUNDS


async def test_unknown_names_and_conflicts_are_rejected_at_construction() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown tools \['stepp'\]"):
        TemporalAgent(_agent("a"), local_activity_tools=["stepp"])
    with pytest.raises(ConfigurationError, match=r"unknown toolset ids \['mcp'\]"):
        TemporalAgent(_agent("a"), local_activity_toolsets=["mcp"])
    with pytest.raises(ConfigurationError, match="collection of tool names or 'all'"):
        TemporalAgent(_agent("a"), local_activity_tools="step")
    with pytest.raises(ConfigurationError, match="runs inline"):
        TemporalAgent(_agent("a"), local_activity_tools=["step"], tool_activity_config={"step": None})
    with pytest.raises(ConfigurationError, match="heartbeat_timeout"):
        TemporalAgent(
            _agent("a"),
            local_activity_toolsets=["agent"],
            tool_activity_config={"other": ActivityConfig(heartbeat_timeout=timedelta(seconds=5))},
        )
    # A heartbeat timeout for every activity (the base layer), or on a tool that stays a regular activity, is fine.
    TemporalAgent(
        _agent("a"), local_activity_tools="all", activity_config=ActivityConfig(heartbeat_timeout=timedelta(seconds=5))
    )
    TemporalAgent(
        _agent("a"),
        local_activity_tools=["step"],
        tool_activity_config={"other": ActivityConfig(heartbeat_timeout=timedelta(seconds=5))},
    )
