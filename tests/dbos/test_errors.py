"""Bad input fails early with a typed error, and never loops in retries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from dbos import DBOS
from pydantic_ai import Agent

from durable_agents.dbos import DBOSAgent, StepConfig
from durable_agents.exceptions import (
    ContainerUsageError,
    DuplicateAgentNameError,
    InvalidConfigValueError,
    RegisteredTooLateError,
    SerializationError,
    UnknownConfigKeyError,
    UnserializableDepsError,
)
from durable_agents.testing import record_units, tool_loop_model

pytestmark = pytest.mark.dbos

Launch = Callable[[], None]


@dataclass
class Deps:
    client: Any


def make_agent(name: str, **kwargs: Any) -> Agent[Any, str]:
    agent = Agent(tool_loop_model(1), name=name, **kwargs)

    @agent.tool_plain
    def step(i: int) -> str:
        return f"r{i}"

    return agent


async def test_unserializable_deps_fail_before_the_workflow_starts(launch: Launch) -> None:
    dbos_agent = DBOSAgent(make_agent("deps", deps_type=Deps))
    launch()
    with record_units() as units, pytest.raises(UnserializableDepsError, match="deps_type"):
        await dbos_agent.run("go", deps=Deps(client=object()))
    assert units.labels == []
    assert await DBOS.list_workflows_async(name="deps.run") == []


async def test_wrapper_created_after_launch(launch: Launch) -> None:
    launch()
    with pytest.raises(RegisteredTooLateError, match=r"before calling DBOS\.launch\(\)"):
        DBOSAgent(make_agent("late"))


def test_duplicate_agent_name(launch_sqlite: Launch) -> None:
    DBOSAgent(make_agent("twin"))
    with pytest.raises(DuplicateAgentNameError, match="'twin'"):
        DBOSAgent(make_agent("twin"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"step_config": {"max_attempt": 3}},
        {"model_step_config": {"retry": True}},
        {"mcp_step_config": {"intervall_seconds": 1.0}},
        {"toolset_step_configs": {"agent": {"backof_rate": 2.0}}},
        {"tool_step_configs": {"step": {"retries": True}}},
        {"event_stream_handler_step_config": {"timeout": 1.0}},
    ],
)
def test_unknown_step_config_key(launch_sqlite: Launch, kwargs: dict[str, Any]) -> None:
    with pytest.raises(UnknownConfigKeyError, match="Known keys: backoff_rate, interval_seconds, max_attempts"):
        DBOSAgent(make_agent("typo"), **kwargs)
    # Nothing was registered: the name is still free.
    DBOSAgent(make_agent("typo"), step_config=StepConfig(max_attempts=1))


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"step_config": {"max_attempts": "three"}}, "max_attempts"),
        ({"model_step_config": {"max_attempts": 0}}, "max_attempts"),
        ({"step_config": {"retries_allowed": "yes"}}, "retries_allowed"),
        ({"mcp_step_config": {"interval_seconds": -1.0}}, "interval_seconds"),
        ({"toolset_step_configs": {"agent": {"backoff_rate": 0}}}, "backoff_rate"),
        ({"tool_step_configs": {"step": {"timeout_seconds": 0}}}, "timeout_seconds"),
        ({"event_stream_handler_step_config": {"max_attempts": 2.5}}, "max_attempts"),
    ],
)
def test_step_config_values_are_checked_when_the_wrapper_is_built(
    launch_sqlite: Launch, kwargs: dict[str, Any], key: str
) -> None:
    with pytest.raises(InvalidConfigValueError, match=rf"for '{key}' in .*StepConfig.*Fix: give '{key}' a value"):
        DBOSAgent(make_agent("badvalue"), **kwargs)
    # Nothing was registered: the name is still free, and good values pass.
    DBOSAgent(make_agent("badvalue"), step_config=StepConfig(max_attempts=1, interval_seconds=0, timeout_seconds=None))


async def test_unpicklable_per_run_handler(launch_sqlite: Launch) -> None:
    dbos_agent = DBOSAgent(make_agent("handler"))
    launch_sqlite()

    async def local_handler(ctx: Any, stream: Any) -> None:
        async for _ in stream:
            pass

    with pytest.raises(SerializationError, match=r"`event_stream_handler`.*module-level function"):
        await dbos_agent.run("go", event_stream_handler=local_handler)
    assert await DBOS.list_workflows_async(name="handler.run") == []


async def test_run_time_toolsets_are_refused(launch_sqlite: Launch) -> None:
    from pydantic_ai.toolsets import FunctionToolset

    dbos_agent = DBOSAgent(make_agent("rt"))
    launch_sqlite()
    with pytest.raises(ContainerUsageError, match=r"FunctionToolset.*cannot be used in a durable run"):
        await dbos_agent.run("go", toolsets=[FunctionToolset([lambda: 1], id="x")])
