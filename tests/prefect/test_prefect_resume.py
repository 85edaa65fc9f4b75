"""`PrefectAgent.resume()` refuses, before anything runs and without touching the run, every run it must not
resume: an unknown id, a run of another agent, a finished run and a run that is still alive."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from _pf_support import counted_agent, flow_runs_of, lines
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.states import Running
from pydantic_ai import Agent

from durable_agents._run_args import encode_run_args
from durable_agents.exceptions import (
    ForeignRunError,
    ResumeRefusedError,
    RunArgumentsMissingError,
    RunFinishedError,
    RunNotFoundError,
    RunStillActiveError,
)
from durable_agents.prefect import PrefectAgent
from durable_agents.testing import CallCounter, tool_loop_model

pytestmark = pytest.mark.prefect


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def test_unknown_ids_are_refused() -> None:
    prefect_agent = PrefectAgent(Agent(tool_loop_model(0), name=_name("unknown")))
    missing = str(uuid.uuid4())
    with pytest.raises(RunNotFoundError, match=f"Cannot resume run {missing}: the Prefect server has no flow run"):
        await prefect_agent.resume(missing)
    with pytest.raises(RunNotFoundError):
        await prefect_agent.resume("not-a-run-id")


async def test_a_run_of_another_agent_and_a_completed_run_are_refused_and_left_as_they_were(tmp_path: Path) -> None:
    owner_name = _name("owner")
    owner = PrefectAgent(counted_agent(owner_name, 1, tmp_path))
    other = PrefectAgent(Agent(tool_loop_model(0), name=_name("other")))
    await owner.run("go")
    [run] = await flow_runs_of(owner_name)
    assert run.state is not None and run.state.is_completed()

    with pytest.raises(ForeignRunError, match=f"it is a run of flow '{owner_name}'") as foreign:
        await other.resume(run.id)
    assert isinstance(foreign.value, ResumeRefusedError) and foreign.value.run_id == str(run.id)
    with pytest.raises(RunFinishedError, match="it is COMPLETED"):
        await owner.resume(run.id)

    [after] = await flow_runs_of(owner_name)
    assert after.state is not None and after.state.is_completed() and after.state.id == run.state.id
    assert len(lines(tmp_path / "model.log")) == 2 and lines(tmp_path / "tools.log") == ["0"]


async def test_a_live_run_is_refused_and_runs_its_units_once(tmp_path: Path) -> None:
    name = _name("live")
    entered, release = threading.Event(), threading.Event()
    agent: Agent[None, str] = Agent(tool_loop_model(1, counter=CallCounter(tmp_path / "model.log")), name=name)

    @agent.tool_plain
    def step(i: int) -> str:
        with (tmp_path / "tools.log").open("a") as f:
            f.write(f"{i}\n")
        entered.set()
        release.wait(60)
        return f"r{i}"

    prefect_agent = PrefectAgent(agent)
    running = asyncio.create_task(prefect_agent.run("go"))
    try:
        while not entered.is_set():
            await asyncio.sleep(0.05)
        [run] = await flow_runs_of(name)
        with pytest.raises(RunStillActiveError, match="it is RUNNING and gave a sign of life"):
            await prefect_agent.resume(run.id)
    finally:
        release.set()
    result: Any = await running
    assert result.output == "done: r0"
    assert lines(tmp_path / "tools.log") == ["0"]
    assert len(lines(tmp_path / "model.log")) == 2
    [after] = await flow_runs_of(name)
    assert after.state is not None and after.state.is_completed()


async def test_resume_marks_the_task_runs_of_the_dead_attempt_crashed() -> None:
    name = _name("dead")
    prefect_agent = PrefectAgent(Agent(tool_loop_model(0, final="ok"), name=name))
    task = prefect_agent.tasks[f"{name}.model"]
    async with get_client() as client:
        # What a killed process leaves behind: a RUNNING flow run with a RUNNING task run.
        flow_run = await client.create_flow_run(prefect_agent.flow, parameters={"user_prompt": "go"}, state=Running())
        task_run = await client.create_task_run(task, flow_run.id, dynamic_key="0", state=Running())

        with pytest.raises(RunStillActiveError):
            await prefect_agent.resume(flow_run.id)  # it changed state a moment ago
        assert (await client.read_task_run(task_run.id)).state_type == StateType.RUNNING

        result = await prefect_agent.resume(flow_run.id, stale_after=0)
        assert result.output == "ok"
        dead = await client.read_task_run(task_run.id)
        assert dead.state is not None and dead.state.is_crashed()
        after = await client.read_flow_run(flow_run.id)
        assert after.state is not None and after.state.is_completed()


async def test_a_run_started_with_arguments_that_are_not_data_needs_them_again() -> None:
    name = _name("unstored")
    prefect_agent = PrefectAgent(Agent(tool_loop_model(0, final="7"), name=name))
    async with get_client() as client:
        # The flow run of a process killed in a run with `output_type=str` (which Prefect cannot store).
        frame, rest = encode_run_args(prefect_agent.deps_codec, "go", {"output_type": str})
        assert rest == {"output_type": str}
        flow_run = await client.create_flow_run(prefect_agent.flow, parameters={"run_args": frame}, state=Running())

    with pytest.raises(
        RunArgumentsMissingError, match=r"started with output_type.*resume\(run_id, output_type=\.\.\.\)"
    ):
        await prefect_agent.resume(flow_run.id, stale_after=0)
    result = await prefect_agent.resume(flow_run.id, stale_after=0, output_type=str)
    assert result.output == "7"
