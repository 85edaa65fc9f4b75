"""Sub-agents on DBOS: the delegate's run is a child workflow of the parent's, its usage adds up, limits hold."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from dbos import DBOS
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.usage import UsageLimits

from durable_agents.dbos import DBOSAgent
from tests.parity.delegation_app import CALLS_ENV, EXPECTED, PROMPT, build

pytestmark = pytest.mark.dbos


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
