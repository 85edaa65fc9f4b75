"""`durable-agents runs list/show/resume --engine prefect` against the session's Prefect server."""

from __future__ import annotations

import json

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Running

from durable_agents._run_args import encode_run_args
from durable_agents.exceptions import ConfigurationError, RunFinishedError, RunStillActiveError
from tests.conftest import PREFECT_WARNING_FILTERS

from ._support import cli
from .prefect_app import agent, live_agent

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


async def test_a_dead_run_is_resumed_with_the_agent_of_app() -> None:
    async with get_client() as client:
        # What a killed process leaves behind: a RUNNING flow run started by `run()`, which no process runs.
        frame, rest = encode_run_args(agent.deps_codec, "go", {})
        assert rest == {}
        flow_run = await client.create_flow_run(agent.flow, parameters={"run_args": frame}, state=Running())
    run_id = str(flow_run.id)
    rows, _ = await cli("runs", "list", "--engine", "prefect", "--agent", agent.name)
    assert (run_id, "Running") in [(r.run_id, r.status) for r in rows]

    with pytest.raises(RunStillActiveError, match="it is RUNNING"):
        await cli("runs", "resume", run_id, "--engine", "prefect", "--app", "tests.cli.prefect_app:agent")
    message, _ = await cli(
        "runs", "resume", run_id, "--engine", "prefect", "--app", "tests.cli.prefect_app:agent", "--force"
    )
    assert message == f"Flow run {run_id} of agent {agent.name!r} resumed and finished: 'done: r0, r1'"
    detail, _ = await cli("runs", "show", run_id, "--engine", "prefect")
    assert detail.run.status == "Completed" and len(detail.units) == 5


async def test_runs_events_prints_a_flow_runs_live_events_by_its_run_id() -> None:
    await live_agent.run("go", run_id="cli-live-1")
    expected = [(offset, event.event_kind) async for offset, event in live_agent.watch("cli-live-1")]
    assert any(kind == "function_tool_result" for _, kind in expected)

    printed, out = await cli("runs", "events", "cli-live-1", "--engine", "prefect", "--follow")
    assert printed == len(expected)
    lines = [line.split() for line in out.splitlines() if line.strip() and not line.endswith("events")]
    assert [(int(words[0]), words[1].rstrip(":")) for words in lines] == expected
    with pytest.raises(ConfigurationError, match="no run 'nope' to watch"):
        await cli("runs", "events", "nope", "--engine", "prefect")
