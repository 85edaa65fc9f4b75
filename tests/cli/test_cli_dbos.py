"""`durable-agents runs list/show/resume --engine dbos` on a DBOS app's SQLite system database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from dbos import DBOS
from pydantic_ai import Agent

from durable_agents._units import UnitKind, parse_unit_label
from durable_agents.dbos import DBOSAgent
from durable_agents.exceptions import ConfigurationError, RunFinishedError
from durable_agents.testing import CallCounter, tool_loop_model
from tests.dbos.conftest import db_url, launch, launch_sqlite, pg_url, sqlite_url  # noqa: F401  # fixtures

from ._support import cli

pytestmark = pytest.mark.dbos


def _agent(name: str) -> DBOSAgent[None, str]:
    agent = Agent(tool_loop_model(2), name=name)

    @agent.tool_plain
    async def step(i: int) -> str:
        return f"r{i}"

    return DBOSAgent(agent)


async def test_runs_are_listed_and_shown_with_their_steps(
    launch: Callable[[], None],  # noqa: F811
    db_url: str,  # noqa: F811
) -> None:
    geo, other = _agent("geo"), _agent("other")
    launch()
    await geo.run("go", run_id="cli-geo-1")
    await other.run("go", run_id="cli-other-1")
    db = db_url.removeprefix("sqlite:///")  # a SQLite file is named by its path, PostgreSQL by its URL

    rows, out = await cli("runs", "list", "--engine", "dbos", "--db", db)
    assert [(r.run_id, r.agent, r.status) for r in rows] == [
        ("cli-other-1", "other", "SUCCESS"),
        ("cli-geo-1", "geo", "SUCCESS"),
    ]
    assert "cli-geo-1" in out and "geo" in out and "SUCCESS" in out
    assert all(r.duration is not None and r.duration >= 0 for r in rows)

    rows, _ = await cli("runs", "list", "--engine", "dbos", "--db", db_url, "--agent", "geo")
    assert [r.run_id for r in rows] == ["cli-geo-1"]

    detail, out = await cli("runs", "show", "cli-geo-1", "--engine", "dbos", "--db", db)
    assert [u.name for u in detail.units] == ["geo.model", "geo.toolset.agent.call/step"] * 2 + ["geo.model"]
    assert [u.kind for u in detail.units] == ["model", "call", "model", "call", "model"]
    assert all(u.status == "SUCCESS" and u.output_bytes and u.duration is not None for u in detail.units)
    assert "geo.toolset.agent.call/step" in out and "SUCCESS" in out

    _, out = await cli("runs", "show", "cli-geo-1", "--engine", "dbos", "--db", db, "--format", "json")
    shown = json.loads(out)
    assert shown["run_id"] == "cli-geo-1" and len(shown["units"]) == 5


async def test_a_finished_run_is_not_resumed_and_unknown_runs_are_named(
    launch_sqlite: Callable[[], None],  # noqa: F811
    sqlite_url: str,  # noqa: F811
) -> None:
    geo = _agent("geo")
    launch_sqlite()
    await geo.run("go", run_id="cli-done")
    with pytest.raises(RunFinishedError, match=r"its DBOS workflow is SUCCESS"):
        await cli("runs", "resume", "cli-done", "--engine", "dbos", "--db", sqlite_url)
    with pytest.raises(ConfigurationError, match=r"has no workflow 'nope'. Fix: take an id"):
        await cli("runs", "show", "nope", "--engine", "dbos", "--db", sqlite_url)


async def test_a_missing_database_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"No DBOS system database at .*Fix: pass `--db`"):
        await cli("runs", "list", "--engine", "dbos", "--db", str(tmp_path / "absent.sqlite"))


def test_unit_labels_read_back() -> None:
    assert parse_unit_label("a.b.toolset.mcp.x.call/tool") is not None
    parsed = parse_unit_label("a.b.toolset.mcp.x.call/tool")
    assert parsed is not None and (parsed.agent, parsed.kind, parsed.toolset_id, parsed.detail) == (
        "a.b",
        UnitKind.TOOL,
        "mcp.x",
        "tool",
    )
    assert parse_unit_label("geo.run") is None and parse_unit_label("DBOS.sleep") is None


async def test_a_cancelled_run_is_resumed_from_its_last_step(
    launch_sqlite: Callable[[], None],  # noqa: F811
    sqlite_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    calls: list[int] = []
    requests = CallCounter(tmp_path / "requests")
    agent = Agent(tool_loop_model(1, counter=requests), name="paused")

    @agent.tool_plain
    async def step(i: int) -> str:
        calls.append(i)
        await gate.wait()
        return f"r{i}"

    paused = DBOSAgent(agent)
    launch_sqlite()
    run = asyncio.create_task(paused.run("go", run_id="cli-cancelled"))
    while not calls:
        await asyncio.sleep(0.05)
    await DBOS.cancel_workflow_async("cli-cancelled")
    gate.set()
    with pytest.raises(Exception, match="cancelled"):
        await run
    [row], _ = await cli("runs", "list", "--engine", "dbos", "--db", sqlite_url)
    assert row.status == "CANCELLED"

    message, _ = await cli("runs", "resume", "cli-cancelled", "--engine", "dbos", "--db", sqlite_url)
    assert message.startswith("Workflow cli-cancelled was CANCELLED and is enqueued again")
    handle = await DBOS.retrieve_workflow_async("cli-cancelled")
    result = await asyncio.wait_for(handle.get_result(), timeout=30)  # acceptance bound: resumed within 30 s
    assert result.output == "done: r0"
    # The first model step completed before the cancel and is not run again; the tool step it interrupted is.
    assert len(requests.calls) == 2 and calls == [0, 0]
    [row], _ = await cli("runs", "list", "--engine", "dbos", "--db", sqlite_url)
    assert row.status == "SUCCESS"


async def test_runs_events_prints_a_runs_live_events_from_its_stream(
    launch_sqlite: Callable[[], None],  # noqa: F811
    sqlite_url: str,  # noqa: F811
) -> None:
    agent = Agent(tool_loop_model(2), name="cli_events")

    @agent.tool_plain
    async def step(i: int) -> str:
        return f"r{i}"

    wrapper = DBOSAgent(agent, live_events=True)
    launch_sqlite()
    await wrapper.run("go", run_id="cli-events-1")
    expected = [(offset, event.event_kind) async for offset, event in wrapper.watch("cli-events-1")]
    assert any(kind == "function_tool_result" for _, kind in expected)

    printed, out = await cli("runs", "events", "cli-events-1", "--engine", "dbos", "--db", sqlite_url, "--follow")
    assert printed == len(expected)
    lines = [line for line in out.splitlines() if line.strip() and not line.endswith("events")]
    assert [(int(line.split()[0]), line.split()[1].rstrip(":")) for line in lines] == expected

    after = expected[2][0]
    printed, out = await cli(
        "runs",
        "events",
        "cli-events-1",
        "--engine",
        "dbos",
        "--db",
        sqlite_url,
        "--after",
        str(after),
        "--format",
        "json",
    )
    assert printed == len(expected) - 3
    assert json.loads(out.split("\n}\n")[0] + "\n}")["offset"] == after + 1

    with pytest.raises(ConfigurationError, match="no run 'nope' to watch"):
        await cli("runs", "events", "nope", "--engine", "dbos", "--db", sqlite_url)
