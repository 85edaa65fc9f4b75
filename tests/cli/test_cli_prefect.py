"""`durable-agents runs list/show/resume --engine prefect` against the session's Prefect server."""

from __future__ import annotations

import json

import pytest

from durable_agents.exceptions import ConfigurationError, RunFinishedError
from tests.conftest import PREFECT_WARNING_FILTERS

from ._support import cli
from .prefect_app import agent

pytestmark = [pytest.mark.prefect, *PREFECT_WARNING_FILTERS]


@pytest.fixture(scope="module", autouse=True)
def _server(prefect_server: str) -> str:
    return prefect_server


async def test_flow_runs_of_agents_are_listed_and_shown_with_their_task_runs() -> None:
    result = await agent.run("go")
    assert result.output == "done: r0, r1"

    rows, out = await cli("runs", "list", "--engine", "prefect")
    mine = [r for r in rows if r.agent == agent.name]
    assert len(mine) == 1 and mine[0].status == "Completed"
    assert mine[0].run_id in out and agent.name in out
    run_id = mine[0].run_id

    rows, _ = await cli("runs", "list", "--engine", "prefect", "--agent", agent.name)
    assert [r.run_id for r in rows] == [run_id]

    detail, out = await cli("runs", "show", run_id, "--engine", "prefect")
    name = agent.name
    assert [u.name for u in detail.units] == [f"{name}.model", f"{name}.toolset.agent.call/step"] * 2 + [
        f"{name}.model"
    ]
    assert all(u.status == "Completed" and u.attempts == 1 and u.duration is not None for u in detail.units)
    assert all(u.output_bytes for u in detail.units)
    assert f"{name}.toolset.agent.call/step" in out

    _, out = await cli("runs", "show", run_id, "--engine", "prefect", "--format", "json")
    assert len(json.loads(out)["units"]) == 5

    with pytest.raises(RunFinishedError, match=r"it is COMPLETED"):
        await cli("runs", "resume", run_id, "--engine", "prefect", "--app", "tests.cli.prefect_app:agent")
    with pytest.raises(ConfigurationError, match=r"needs the agent. Fix: pass `--app module:variable`"):
        await cli("runs", "resume", run_id, "--engine", "prefect")
    with pytest.raises(ConfigurationError, match=r"has no flow run 'nope'"):
        await cli("runs", "show", "nope", "--engine", "prefect")
