"""Sub-agents on DBOS: the delegate's run is a child workflow of the parent's, its usage adds up, limits hold."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from dbos import DBOS
from dbos._error import DBOSAwaitedWorkflowCancelledError
from pydantic_ai import Agent, RunContext
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import UsageLimits

from durable_agents.dbos import DBOSAgent
from durable_agents.testing import CRASH_ENV
from durable_agents.testing._crash import CRASH_EXIT_CODE
from tests.parity.delegation_app import CALLS_ENV, EXPECTED, PROMPT, build

pytestmark = pytest.mark.dbos

ROOT = Path(__file__).parents[2]


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "calls"
    monkeypatch.setenv(CALLS_ENV, str(path))
    return path


async def test_the_delegate_runs_as_a_child_workflow_and_usage_adds_up(
    launch_sqlite: Callable[[], None], calls: Path
) -> None:
    bare_booking, _ = build(None)
    bare = await bare_booking.run(PROMPT)
    calls.unlink()
    booking, search = build(DBOSAgent)
    launch_sqlite()
    result = await booking.run(PROMPT, run_id="trip-1")
    assert result.output == bare.output == EXPECTED
    assert result.usage == bare.usage
    [child] = await DBOS.list_workflows_async(name=search.workflow_name)
    assert child.parent_workflow_id == "trip-1"
    assert child.workflow_id.startswith("trip-1-")  # derived from the parent's id by DBOS
    assert child.status == "SUCCESS"
    # The search tool ran in the parent's workflow, not in a step; the search agent's own units are steps.
    steps = await DBOS.list_workflow_steps_async("trip-1")
    assert not any("search_flights" in step["function_name"] for step in steps)
    assert (
        sum(
            1
            for step in await DBOS.list_workflow_steps_async(child.workflow_id)
            if step["function_name"] == "search_agent.model"
        )
        == 3
    )
    assert calls.read_text().splitlines() == ["booking:0", "search:0", "search:1", "search:2", "booking:1"]


async def test_a_usage_limit_exceeded_in_the_delegate_fails_the_run_once(
    launch_sqlite: Callable[[], None], calls: Path
) -> None:
    booking, search = build(DBOSAgent)
    launch_sqlite()
    with pytest.raises(UsageLimitExceeded):
        await booking.run(PROMPT, run_id="trip-2", usage_limits=UsageLimits(request_limit=2))
    # Booking's first request and the search's first: the search's second would exceed the limit. Nothing retried.
    assert calls.read_text().splitlines() == ["booking:0", "search:0"]
    [child] = await DBOS.list_workflows_async(name=search.workflow_name)
    assert child.status == "ERROR"
    [parent] = await DBOS.list_workflows_async(workflow_ids=["trip-2"])
    assert parent.status == "ERROR"


@pytest.mark.slow
async def test_a_crash_in_the_delegates_second_tool_resumes_without_resending_model_requests(
    sqlite_url: str, tmp_path: Path, calls: Path
) -> None:
    bare_booking, _ = build(None)
    bare = await bare_booking.run(PROMPT)
    calls.unlink()
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    app = [sys.executable, str(Path(__file__).with_name("delegation_crash_app.py"))]
    crashed = subprocess.run(
        [*app, "run", sqlite_url, "trip-3"],
        env={**env, CRASH_ENV: "search_agent.toolset.agent.call/find@2"},
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr
    assert calls.read_text().splitlines() == ["booking:0", "search:0", "search:1"]
    resumed = subprocess.run(
        [*app, "resume", sqlite_url, "trip-3"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    out = json.loads(resumed.stdout.splitlines()[-1])
    assert out["output"] == bare.output == EXPECTED
    assert out["usage"] == dataclasses.asdict(bare.usage)
    # Every model request of parent and child was sent once: none completed before the crash was sent again.
    assert calls.read_text().splitlines() == ["booking:0", "search:0", "search:1", "search:2", "booking:1"]


@pytest.mark.slow
def test_the_delegation_example_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, "DBOS_SYSTEM_DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "delegation.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Booked: AK Air SFO-ANC 09:15" in done.stdout
    assert "usage: 5 requests, 3 tool calls" in done.stdout


async def test_cancelling_the_parent_with_cancel_children_cancels_the_child(
    launch_sqlite: Callable[[], None],
) -> None:
    """`DBOS.cancel_workflow` cancels the parent only; with `cancel_children=True` it reaches the sub-agent's run."""
    release = asyncio.Event()
    waiting = asyncio.Event()
    search_agent = Agent(FunctionModel(_call_then_answer("wait")), name="waiting_search")

    @search_agent.tool_plain
    async def wait() -> str:
        waiting.set()
        await release.wait()
        return "late"

    search = DBOSAgent(search_agent)
    booking_agent = Agent(FunctionModel(_call_then_answer("delegate")), name="waiting_booking")

    @booking_agent.tool
    async def delegate(ctx: RunContext[None]) -> str:
        return (await search.run("find", usage=ctx.usage)).output

    booking = DBOSAgent(booking_agent)
    launch_sqlite()
    run = asyncio.ensure_future(booking.run("book", run_id="trip-cancel"))
    await asyncio.wait_for(waiting.wait(), 30)
    await DBOS.cancel_workflow_async("trip-cancel", cancel_children=True)
    release.set()
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        await asyncio.wait_for(run, 30)
    [child] = await DBOS.list_workflows_async(name=search.workflow_name)
    assert child.parent_workflow_id == "trip-cancel"
    [parent] = await DBOS.list_workflows_async(workflow_ids=["trip-cancel"])
    assert (parent.status, child.status) == ("CANCELLED", "CANCELLED")


def _call_then_answer(tool: str) -> Callable[[list[ModelMessage], AgentInfo], ModelResponse]:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart(tool, {}, tool_call_id=f"{tool}_0")])
        return ModelResponse(parts=[TextPart("done")])

    return model
