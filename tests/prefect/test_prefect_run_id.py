"""`run(..., run_id=...)` is idempotent: a run killed in tool 2 of 4 and started again with the same `run_id` goes on
in the same flow run without re-executing anything, and a start after it completed returns the stored output."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from _pf_support import flow_runs_of, lines
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import AgentStreamEvent, FunctionToolResultEvent

from durable_agents.exceptions import RunStillActiveError
from durable_agents.prefect import PrefectAgent
from durable_agents.prefect._agent import RUN_ID_TAG_PREFIX
from durable_agents.testing import CRASH_ENV, CallCounter, tool_loop_model
from durable_agents.testing._crash import CRASH_EXIT_CODE

pytestmark = pytest.mark.prefect

SCRIPT = Path(__file__).parent / "scripts" / "crash_agent.py"


@dataclass
class Deps:
    """The deps type of `crash_agent.py`."""

    tags: set[str]


def _twin(name: str, work: Path) -> PrefectAgent[Deps, str]:
    """The agent of `crash_agent.py`, built in this process, counting in the same files."""
    agent: Agent[Deps, str] = Agent(
        tool_loop_model(4, counter=CallCounter(work / "model.log")), name=name, deps_type=Deps
    )

    @agent.tool_plain
    def step(i: int) -> str:
        with (work / "tools.log").open("a") as f:
            f.write(f"{i}\n")
        return f"r{i}"

    async def handler(ctx: RunContext[Deps], events: AsyncIterable[AgentStreamEvent]) -> None:
        async for event in events:
            if isinstance(event, FunctionToolResultEvent):
                with (work / "events.log").open("a") as f:
                    f.write(f"{event.part.content}\n")

    return PrefectAgent(agent, event_stream_handler=handler, heartbeat_seconds=1)


@pytest.mark.slow
async def test_a_killed_run_started_again_with_its_run_id_goes_on_and_then_returns_its_stored_output(
    tmp_path: Path,
) -> None:
    name = f"runid_{uuid.uuid4().hex[:8]}"
    run_id = f"job-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env.update({CRASH_ENV: "call/step@2", "CRASH_AGENT_RUN_ID": run_id, "PYTHONHASHSEED": "1"})
    crashed = subprocess.run(
        [sys.executable, str(SCRIPT), "start", str(tmp_path), name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr[-2000:]
    assert lines(tmp_path / "tools.log") == ["0"]  # killed as tool 2 started
    [flow_run] = await flow_runs_of(name)
    assert RUN_ID_TAG_PREFIX + run_id in flow_run.tags
    assert flow_run.state is not None and flow_run.state.is_running()

    time.sleep(3.5)  # its heartbeat (every second) is stale after three: the run is dead
    prefect_agent = _twin(name, tmp_path)
    deps = Deps({"alpha", "beta", "gamma", "delta", "epsilon"})
    result = await prefect_agent.run("go", deps=deps, run_id=run_id)
    assert result.output == "done: r0, r1, r2, r3"
    # pydantic-ai's meaning of run_id is kept: it is the id of the agent run on its messages.
    assert {m.run_id for m in result.all_messages()} == {run_id}

    # One flow run; every model request, tool and event delivery ran exactly once over both processes.
    [after] = await flow_runs_of(name)
    assert after.id == flow_run.id and after.state is not None and after.state.is_completed()
    assert lines(tmp_path / "model.log") == ["model:0", "model:1", "model:2", "model:3", "model:4"]
    assert lines(tmp_path / "tools.log") == ["0", "1", "2", "3"]
    assert lines(tmp_path / "events.log") == ["r0", "r1", "r2", "r3"]

    # A third start returns the stored output and runs nothing.
    again = await prefect_agent.run("go", deps=deps, run_id=run_id)
    assert again.output == "done: r0, r1, r2, r3"
    assert [r.id for r in await flow_runs_of(name)] == [flow_run.id]
    assert len(lines(tmp_path / "model.log")) == 5 and len(lines(tmp_path / "tools.log")) == 4
    assert len(lines(tmp_path / "events.log")) == 4


async def test_a_live_run_is_refused_and_a_failed_run_is_run_again_in_the_same_flow_run(tmp_path: Path) -> None:
    name = f"runid_{uuid.uuid4().hex[:8]}"
    release = asyncio.Event()
    fail = [True]
    agent: Agent[None, str] = Agent(tool_loop_model(1, counter=CallCounter(tmp_path / "model.log")), name=name)

    @agent.tool_plain
    async def step(i: int) -> str:
        with (tmp_path / "tools.log").open("a") as f:
            f.write(f"{i}\n")
        await release.wait()
        if fail[0]:
            raise RuntimeError("provider down")
        return f"r{i}"

    prefect_agent = PrefectAgent(agent)
    first = asyncio.create_task(prefect_agent.run("go", run_id="live"))
    while not lines(tmp_path / "tools.log"):
        await asyncio.sleep(0.1)
    with pytest.raises(RunStillActiveError, match="gave a sign of life"):
        await asyncio.wait_for(prefect_agent.run("go", run_id="live"), 30)  # a second flow run would wait
    release.set()
    with pytest.raises(RuntimeError, match="provider down"):
        await first
    [flow_run] = await flow_runs_of(name)
    assert flow_run.state is not None and flow_run.state.is_failed()

    fail[0] = False
    result = await prefect_agent.run("go", run_id="live")
    assert result.output == "done: r0"
    [after] = await flow_runs_of(name)
    assert after.id == flow_run.id and after.state is not None and after.state.is_completed()
    assert lines(tmp_path / "model.log") == ["model:0", "model:1"]  # the first request was not asked again
    assert lines(tmp_path / "tools.log") == ["0", "0"]  # the failed tool got a new attempt
