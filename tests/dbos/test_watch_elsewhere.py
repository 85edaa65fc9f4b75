"""Watching a DBOS run from a process that is no DBOS application: `watch(run_id, system_database_url=...)`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

from pydantic_ai import Agent

from durable_agents.dbos import DBOSAgent
from durable_agents.testing import tool_loop_model
from tests.dbos.conftest import launch_sqlite, sqlite_url  # noqa: F401  # fixtures

# A watcher process: no DBOS created, launched or configured; only the system database URL.
_WATCHER = """
import asyncio, sys
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel
from durable_agents.dbos import DBOSAgent
from durable_agents.exceptions import ConfigurationError, UnknownRunError

watcher = DBOSAgent(Agent(TestModel(), name="a_watcher"), live_events=True)

async def main(run_id, url):
    try:
        async for _ in watcher.watch(run_id):
            pass
    except ConfigurationError as exc:
        print(type(exc).__name__, exc.message.split(".")[0])
    async for offset, event in watcher.watch(run_id, system_database_url=url):
        print(offset, event.event_kind)
    try:
        async for _ in watcher.watch("no-such-run", system_database_url=url):
            pass
    except UnknownRunError as exc:
        print(type(exc).__name__)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_process_without_dbos_watches_a_run_with_the_system_database_url(
    launch_sqlite: Callable[[], None],  # noqa: F811
    sqlite_url: str,  # noqa: F811
) -> None:
    agent = Agent(tool_loop_model(2), name="watched_elsewhere")

    @agent.tool_plain
    async def step(i: int) -> str:
        return f"r{i}"

    wrapper = DBOSAgent(agent, live_events=True)
    launch_sqlite()
    await wrapper.run("go", run_id="watched-elsewhere-1")
    expected = [f"{offset} {event.event_kind}" async for offset, event in wrapper.watch("watched-elsewhere-1")]
    assert any(line.endswith("function_tool_result") for line in expected)

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WATCHER, "watched-elsewhere-1", sqlite_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    lines = out.decode().splitlines()
    assert lines[0] == "ConfigurationError Watching a DBOS run needs the application's system database"
    assert lines[1:-1] == expected
    assert lines[-1] == "UnknownRunError"
