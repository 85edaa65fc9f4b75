"""Sub-agents on Prefect: the delegate's run is a subflow of the parent's flow run, its usage adds up, limits hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pf_support import flow_runs_of, task_runs_of
from prefect.client.orchestration import get_client
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.usage import UsageLimits

from durable_agents.prefect import PrefectAgent
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
