"""PrefectAgent on a real Prefect server: outputs, task runs, subflows, config, errors."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _pf_support import counted_agent, flow_runs_of, lines, task_runs_of
from prefect import flow
from pydantic_ai import Agent, RunContext
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import AgentStreamEvent, FunctionToolResultEvent, PartDeltaEvent
from pydantic_ai.models.test import TestModel
from pydantic_ai.toolsets import FunctionToolset, WrapperToolset

from durable_agents.exceptions import (
    ConfigurationError,
    DuplicateAgentNameError,
    UnknownConfigKeyError,
    UnserializableDepsError,
)
from durable_agents.prefect import PrefectAgent, TaskConfig
from durable_agents.testing import CallCounter, record_units, tool_loop_model

pytestmark = pytest.mark.prefect


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _helper(name: str, instructions: str) -> PrefectAgent[None, str]:
    """An application's helper: every agent it builds is wrapped on the same source line."""
    return PrefectAgent(Agent(TestModel(), name=name, instructions=instructions))


def test_two_different_agents_of_one_name_built_by_one_helper_are_refused() -> None:
    name = _name("helper")
    first = _helper(name, "Answer in French.")
    with pytest.raises(DuplicateAgentNameError, match=name):
        _helper(name, "Answer in German.")
    # The same agent built again (its module imported a second time) is not another agent.
    again = _helper(name, "Answer in French.")
    assert again.rebuilds(first)


async def test_k_round_agent_matches_bare_agent_and_records_tasks_in_order(tmp_path: Path) -> None:
    rounds = 3
    name = _name("k_rounds")
    agent = counted_agent(name, rounds, tmp_path)
    bare = await agent.run("go")
    prefect_agent = PrefectAgent(agent)

    result = await prefect_agent.run("go")

    assert result.output == bare.output == "done: r0, r1, r2"
    [flow_run] = await flow_runs_of(name)
    assert flow_run.state is not None and flow_run.state.is_completed()
    names = [t.name for t in await task_runs_of(flow_run.id)]
    model, tool = f"{name}.model", f"{name}.toolset.agent.call/step"
    assert names == [model, tool, model, tool, model, tool, model]


async def test_run_inside_a_user_flow_is_a_subflow(tmp_path: Path) -> None:
    name = _name("subflow")
    prefect_agent = PrefectAgent(counted_agent(name, 1, tmp_path))

    @flow(name=f"user_{name}")
    async def user_flow(prompt: str) -> str:
        return (await prefect_agent.run(prompt)).output

    assert await user_flow("go") == "done: r0"
    [parent] = await flow_runs_of(f"user_{name}")
    [child] = await flow_runs_of(name)
    assert child.parent_task_run_id is not None
    assert child.parent_task_run_id in {t.id for t in await task_runs_of(parent.id)}


def test_run_sync(tmp_path: Path) -> None:
    prefect_agent = PrefectAgent(counted_agent(_name("sync"), 2, tmp_path))
    assert prefect_agent.run_sync("go").output == "done: r0, r1"


async def test_event_stream_handler_sees_live_stream_and_tool_events(tmp_path: Path) -> None:
    events: list[AgentStreamEvent] = []

    async def handler(ctx: RunContext[Any], stream: Any) -> None:
        async for event in stream:
            events.append(event)

    prefect_agent = PrefectAgent(counted_agent(_name("events"), 1, tmp_path), event_stream_handler=handler)
    with record_units() as units:
        result = await prefect_agent.run("go")
    assert result.output == "done: r0"
    assert any(isinstance(e, PartDeltaEvent) for e in events)
    assert [e.part.content for e in events if isinstance(e, FunctionToolResultEvent)] == ["r0"]
    assert "events" in units.kinds


async def test_retryable_error_is_retried_and_fatal_error_is_not(tmp_path: Path) -> None:
    attempts = tmp_path / "attempts.log"
    agent: Agent[None, str] = Agent(tool_loop_model(1, tool_name="flaky"), name=_name("retry"))

    @agent.tool_plain
    def flaky(i: int) -> str:
        with attempts.open("a") as f:
            f.write("x\n")
        if len(lines(attempts)) < 3:
            raise RuntimeError("transient")
        return "ok"

    prefect_agent = PrefectAgent(agent, tool_task_config=TaskConfig(retries=3, retry_delay_seconds=[0.0, 0.1]))
    assert (await prefect_agent.run("go")).output == "done: ok"
    assert len(lines(attempts)) == 3

    fatal_attempts = tmp_path / "fatal.log"
    bad: Agent[None, str] = Agent(tool_loop_model(1, tool_name="broken"), name=_name("fatal"))

    @bad.tool_plain
    def broken(i: int) -> str:
        with fatal_attempts.open("a") as f:
            f.write("x\n")
        raise UserError("misconfigured tool")

    prefect_bad = PrefectAgent(bad, task_config=TaskConfig(retries=5))
    with pytest.raises(UserError, match="misconfigured tool"):
        await prefect_bad.run("go")
    assert len(lines(fatal_attempts)) == 1


async def test_tool_opt_out_runs_inline_and_per_tool_config_applies(tmp_path: Path) -> None:
    name = _name("optout")
    agent: Agent[None, str] = Agent(tool_loop_model(1, tool_name="fast_tool"), name=name)

    @agent.tool_plain
    def fast_tool(i: int) -> str:
        return f"fast{i}"

    prefect_agent = PrefectAgent(agent, tool_task_config_by_name={"fast_tool": None})
    with record_units() as units:
        assert (await prefect_agent.run("go")).output == "done: fast0"
    assert units.kinds == ["model", "model"]
    [flow_run] = await flow_runs_of(name)
    assert [t.name for t in await task_runs_of(flow_run.id)] == [f"{name}.model", f"{name}.model"]


async def test_listing_and_calls_of_an_io_toolset_are_tasks(tmp_path: Path) -> None:
    # Stands in for an MCP server: a toolset that is not a static function toolset, so its tool list is I/O.
    name = _name("remote")
    inner = FunctionToolset[Any](id="remote")

    @inner.tool_plain
    def step(i: int) -> str:
        return f"remote{i}"

    class Remote(WrapperToolset[Any]):
        @property
        def id(self) -> str | None:
            return "remote"

        def visit_and_replace(self, visitor: Any) -> Any:
            return visitor(self)

    agent: Agent[None, str] = Agent(tool_loop_model(1), name=name, toolsets=[Remote(inner)])
    prefect_agent = PrefectAgent(agent, toolset_task_configs={"remote": TaskConfig(retries=1)})
    assert (await prefect_agent.run("go")).output == "done: remote0"
    [flow_run] = await flow_runs_of(name)
    names = [t.name for t in await task_runs_of(flow_run.id)]
    assert names[0] == f"{name}.toolset.remote.list"
    assert f"{name}.toolset.remote.call/step" in names

    with pytest.raises(ConfigurationError, match="not a function tool"):
        PrefectAgent(
            Agent(tool_loop_model(1), name=_name("remote_none"), toolsets=[Remote(inner)]),
            tool_task_config_by_name={"step": None},
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"task_config": {"retry": 3}},
        {"model_task_config": {"timeout": 3}},
        {"tool_task_config": {"retries": 1, "cache": None}},
        {"tool_task_config_by_name": {"step": {"retrys": 2}}},
        {"toolset_task_configs": {"agent": {"delay": 2}}},
        {"event_stream_handler_task_config": {"log_print": True}},
    ],
)
def test_unknown_task_config_key_is_a_typed_error(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(UnknownConfigKeyError, match="Known keys: cache_expiration, cache_policy"):
        PrefectAgent(counted_agent(_name("badcfg"), 1, tmp_path), **kwargs)


async def test_unserializable_deps_fail_before_any_flow_run(tmp_path: Path) -> None:
    class Client:
        pass

    with pytest.raises(UnserializableDepsError, match="deps_type"):
        PrefectAgent(counted_agent(_name("deps_type"), 1, tmp_path, deps_type=Client))

    @dataclass
    class Deps:
        client: Any

    name = _name("deps")
    prefect_agent = PrefectAgent(counted_agent(name, 1, tmp_path, deps_type=Deps))
    with pytest.raises(UnserializableDepsError, match="cannot be serialized"):
        await prefect_agent.run("go", deps=Deps(client=threading.Lock()))
    assert await flow_runs_of(name) == []
    assert lines(tmp_path / "model.log") == []


async def test_a_flow_retry_reuses_completed_units_of_the_same_flow_run(tmp_path: Path) -> None:
    # A tool fails once with no task retries left, so the flow run fails and Prefect retries it. The retried flow
    # body runs the agent again from the start; units completed in the first attempt come from the run-scoped cache.
    name = _name("flow_retry")
    model_log = tmp_path / "model.log"
    tool_log = tmp_path / "tools.log"
    agent: Agent[None, str] = Agent(tool_loop_model(3, counter=CallCounter(model_log)), name=name)
    failed = threading.Event()

    @agent.tool_plain
    def step(i: int) -> str:
        with tool_log.open("a") as f:
            f.write(f"{i}\n")
        if i == 1 and not failed.is_set():
            failed.set()
            raise ConnectionError("transient outage")
        return f"r{i}"

    prefect_agent = PrefectAgent(agent, flow_retries=1)
    result = await prefect_agent.run("go")

    assert result.output == "done: r0, r1, r2"
    [flow_run] = await flow_runs_of(name)
    assert flow_run.run_count == 2  # one flow run, retried once
    assert lines(model_log) == ["model:0", "model:1", "model:2", "model:3"]  # no model request sent twice
    assert lines(tool_log) == ["0", "1", "1", "2"]  # tool 0 not re-run; tool 1 ran again after its failure


@pytest.mark.parametrize("fails", ["after the agent run", "inside the agent run"])
async def test_a_retry_of_the_users_flow_skips_the_agents_completed_units(tmp_path: Path, fails: str) -> None:
    # Each attempt of the user's flow calls the agent in a new subflow run (a failed subflow, or a completed one
    # without a stored result, is run again); its units are keyed by the call's place in the user's flow run.
    name = _name("user_retry")
    model_log, tool_log = tmp_path / "model.log", tmp_path / "tools.log"
    agent: Agent[None, str] = Agent(tool_loop_model(2, counter=CallCounter(model_log)), name=name)
    attempts: list[int] = []

    @agent.tool_plain
    def step(i: int) -> str:
        with tool_log.open("a") as f:
            f.write(f"{i}\n")
        if fails == "inside the agent run" and i == 1 and len(attempts) == 1:
            raise ConnectionError("transient outage")
        return f"r{i}"

    prefect_agent = PrefectAgent(agent)

    @flow(name=f"user_{name}", retries=1)
    async def user_flow() -> str:
        attempts.append(len(attempts) + 1)
        output = (await prefect_agent.run("go")).output
        if fails == "after the agent run" and len(attempts) == 1:
            raise RuntimeError("the user's flow fails after the agent run")
        return output

    assert await user_flow() == "done: r0, r1"
    assert attempts == [1, 2]
    assert lines(model_log) == ["model:0", "model:1", "model:2"]  # no model request sent twice
    expected_tools = ["0", "1"] if fails == "after the agent run" else ["0", "1", "1"]
    assert lines(tool_log) == expected_tools  # tool 0 never runs again; tool 1 again only after it failed


async def test_overrides_of_the_plain_agent_and_the_wrapper_reach_the_tasks(tmp_path: Path) -> None:
    name = _name("overridden")
    agent = counted_agent(name, 2, tmp_path)
    prefect_agent = PrefectAgent(agent)
    with agent.override(model=tool_loop_model(0, final="plain override")), record_units() as units:
        assert (await prefect_agent.run("go")).output == "plain override"
    assert units.labels == [f"{name}.model"]
    with prefect_agent.override(model=tool_loop_model(0, final="wrapper override")), record_units() as units:
        assert (await prefect_agent.run("go")).output == "wrapper override"
    assert units.labels == [f"{name}.model"]
