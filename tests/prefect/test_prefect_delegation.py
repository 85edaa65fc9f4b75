"""Sub-agents on Prefect: the delegate's run is a subflow of the parent's flow run, its usage adds up, limits hold."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _pf_support import flow_runs_of, task_runs_of
from prefect.client.orchestration import get_client
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.usage import UsageLimits

from durable_agents.prefect import PrefectAgent
from durable_agents.testing import CRASH_ENV
from durable_agents.testing._crash import CRASH_EXIT_CODE
from tests.parity.delegation_app import CALLS_ENV, EXPECTED, PROMPT, build

pytestmark = pytest.mark.prefect


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "calls"
    monkeypatch.setenv(CALLS_ENV, str(path))
    return path


async def test_the_delegate_runs_as_a_subflow_and_usage_adds_up(calls: Path) -> None:
    bare_booking, _ = build(None)
    bare = await bare_booking.run(PROMPT)
    calls.unlink()
    booking, search = build(PrefectAgent)
    before = {r.id for r in await flow_runs_of(search.name)}
    result = await booking.run(PROMPT, metadata={"trip": "subflow"})
    assert result.output == bare.output == EXPECTED
    assert result.usage == bare.usage
    assert calls.read_text().splitlines() == ["booking:0", "search:0", "search:1", "search:2", "booking:1"]
    [child] = [r for r in await flow_runs_of(search.name) if r.id not in before]
    assert child.parent_task_run_id is not None
    async with get_client() as client:
        parent_task = await client.read_task_run(child.parent_task_run_id)
    assert parent_task.flow_run_id is not None
    # The search tool ran in the booking flow itself: its task runs are the booking agent's model requests and
    # the subflow's placeholder, no tool call.
    names = [t.name for t in await task_runs_of(parent_task.flow_run_id)]
    assert not any("search_flights" in n for n in names), names


async def test_a_usage_limit_exceeded_in_the_delegate_fails_the_run_once(calls: Path) -> None:
    booking, _ = build(PrefectAgent)
    with pytest.raises(UsageLimitExceeded):
        await booking.run(PROMPT, usage_limits=UsageLimits(request_limit=2))
    assert calls.read_text().splitlines() == ["booking:0", "search:0"]


@pytest.mark.slow
async def test_a_crash_in_the_delegates_second_tool_resumes_without_resending_model_requests(calls: Path) -> None:
    bare_booking, _ = build(None)
    bare = await bare_booking.run(PROMPT)
    calls.unlink()
    run_id = f"trip-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    script = [sys.executable, str(Path(__file__).parent / "scripts" / "delegation_agent.py"), run_id]
    crashed = subprocess.run(
        script,
        env={**env, CRASH_ENV: "search_agent.toolset.agent.call/find@2"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr[-2000:]
    assert calls.read_text().splitlines() == ["booking:0", "search:0", "search:1"]
    await asyncio.sleep(3.5)  # its heartbeat (every second) is stale after three: the run is dead, resume takes it
    resumed = subprocess.run(script, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    out = json.loads(resumed.stdout.splitlines()[-1])
    assert out["output"] == bare.output == EXPECTED
    assert out["usage"] == dataclasses.asdict(bare.usage)
    # Every model request of parent and child was sent once: none completed before the crash was sent again.
    assert calls.read_text().splitlines() == ["booking:0", "search:0", "search:1", "search:2", "booking:1"]
