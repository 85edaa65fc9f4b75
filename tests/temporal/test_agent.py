"""TemporalAgent in workflows on a real dev server: same output as the bare agent, the expected activities in order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic_ai import Agent
from temporalio.client import Client
from temporalio.worker import Worker

import durable_agents.temporal as temporal_pkg
from durable_agents.exceptions import (
    AgentNameRequiredError,
    ConfigurationError,
    DuplicateAgentNameError,
    UnknownConfigKeyError,
)
from durable_agents.temporal import ActivityConfig, DurableAgentsPlugin, TemporalAgent, history_stats
from durable_agents.testing import record_units, tool_loop_model

from . import workflows as w
from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]


async def test_tool_loop_matches_bare_agent_and_schedules_activities_in_order(client: Client, task_queue: str) -> None:
    bare = await w.build_agent("bare", w.ROUNDS).run("go")
    with record_units() as units:
        handle = await client.start_workflow(w.LoopWorkflow.run, "go", id=new_id(), task_queue=task_queue)
        output = await handle.result()
    assert output == bare.output == "done: r0, r1, r2, r3"
    expected = ["loop.model", "loop.toolset.agent.call"] * w.ROUNDS + ["loop.model"]
    stats = await history_stats(handle)
    assert stats.activity_types == expected
    assert units.labels == [n if n.endswith("model") else n + "/step" for n in expected]


async def test_parallel_tool_calls_run_in_the_workflow(client: Client, task_queue: str) -> None:
    bare = await w.build_agent("bare", 2, parallel=3).run("go")
    handle = await client.start_workflow(w.ParallelWorkflow.run, "go", id=new_id(), task_queue=task_queue)
    assert await handle.result() == bare.output == "done: r0, r1, r2, r3, r4, r5"
    call = "parallel.toolset.agent.call"
    assert (await history_stats(handle)).activity_types == ["parallel.model", *[call] * 3] * 2 + ["parallel.model"]


async def test_inline_tool_runs_in_the_workflow_without_activities(client: Client, task_queue: str) -> None:
    handle = await client.start_workflow(w.AgentWorkflow.run, "inline", id=new_id(), task_queue=task_queue)
    assert await handle.result() == "done: r0, r1, r2"
    assert (await history_stats(handle)).activity_types == ["inline.model"] * 4


async def test_event_stream_handler_sees_model_stream_and_agent_events(client: Client, task_queue: str) -> None:
    w.HANDLED.clear()
    handle = await client.start_workflow(w.AgentWorkflow.run, "handler", id=new_id(), task_queue=task_queue)
    assert await handle.result() == "done: r0, r1"
    types = (await history_stats(handle)).activity_types
    assert types.count("handler.model") == 3
    assert "handler.events" in types
    # Live stream events inside the model activities, tool events through the events activities.
    assert "PartStartEvent" in w.HANDLED and "PartDeltaEvent" in w.HANDLED
    assert w.HANDLED.count("FunctionToolCallEvent") == 2
    assert w.HANDLED.count("FunctionToolResultEvent") == 2


async def test_outside_a_workflow_the_wrapper_is_the_bare_agent() -> None:
    with record_units() as units:
        result = await w.loop_agent.run("go")
    assert result.output == "done: r0, r1, r2, r3"
    assert units.labels == []


async def test_construction_errors() -> None:
    with pytest.raises(AgentNameRequiredError):
        TemporalAgent(Agent(tool_loop_model(1)))
    agent = w.build_agent("cfg", 1)
    with pytest.raises(UnknownConfigKeyError, match="start_to_close_timout"):
        TemporalAgent(agent, activity_config={"start_to_close_timout": timedelta(seconds=1)})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ConfigurationError, match="timedelta"):
        TemporalAgent(agent, model_activity_config=ActivityConfig(start_to_close_timeout=30))  # type: ignore[typeddict-item]
    with pytest.raises(ConfigurationError, match="not a function tool"):
        TemporalAgent(agent, tool_activity_config={"nope": None})


async def test_duplicate_agent_names_on_one_worker(client: Client) -> None:
    one = TemporalAgent(w.build_agent("twin", 1))
    two = TemporalAgent(w.build_agent("twin", 1))
    with pytest.raises(DuplicateAgentNameError, match="twin"):
        DurableAgentsPlugin(one, two)
    with pytest.raises(DuplicateAgentNameError, match="twin"):
        Worker(
            client,
            task_queue="dup",
            workflows=[w.LoopWorkflow],
            plugins=[DurableAgentsPlugin(one), DurableAgentsPlugin(two)],
        )
    # The same agent through two plugins is registered once.
    worker = Worker(
        client,
        task_queue="dup",
        workflows=[w.LoopWorkflow],
        plugins=[DurableAgentsPlugin(one), DurableAgentsPlugin(one)],
    )
    assert worker is not None


async def test_manual_activity_registration_lists_every_unit() -> None:
    names = [getattr(fn, "__temporal_activity_definition").name for fn in w.loop_agent.temporal_activities]
    assert names == ["loop.model", "loop.events", "loop.toolset.agent.call", "loop.ask"]


async def test_exports_are_complete() -> None:
    public = {n for n in vars(temporal_pkg) if not n.startswith("_") and n not in {"temporalio"}}
    assert set(temporal_pkg.__all__) == public
    assert len(temporal_pkg.__all__) == len(set(temporal_pkg.__all__))
