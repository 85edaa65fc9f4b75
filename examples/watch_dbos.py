"""Watching a DBOS run from outside: its agent events, from offset 0, then live until it ends.

`live_events=True` makes each run write its events to its workflow's DBOS stream;
`watch(workflow_id)` reads them from any process that launched DBOS on the same system database.
Here the watcher joins while the run is in its second tool call, as a browser that reconnects
would, and still gets every event from offset 0.

Key-free (a scripted model). DBOS uses `DBOS_SYSTEM_DATABASE_URL`, or a SQLite file in a temp
directory. Run: `python examples/watch_dbos.py`.
"""

import asyncio
import os
import tempfile
import uuid
from pathlib import Path

from dbos import DBOS
from pydantic_ai import Agent

from durable_agents.dbos import DBOSAgent
from durable_agents.testing import tool_loop_model

agent = Agent(tool_loop_model(2, tool_name="lookup"), name="watched_geography")
second_call = asyncio.Event()


@agent.tool_plain
async def lookup(i: int) -> str:
    """Any I/O; the second call lets the watcher start first."""
    if i == 1:
        second_call.set()
        await asyncio.sleep(0.5)
    return ["Mexico City", "about 22 million people"][i]


async def main() -> None:
    run_id = f"watched-{uuid.uuid4().hex[:8]}"
    run = asyncio.create_task(dbos_agent.run("Capital of Mexico, and its size?", run_id=run_id))
    await second_call.wait()  # the watcher joins late
    async for offset, event in dbos_agent.watch(run_id):
        print(offset, event.event_kind)
    print("output:", (await run).output)


if __name__ == "__main__":
    default_db = f"sqlite:///{Path(tempfile.mkdtemp()) / 'watch.sqlite'}"
    url = os.environ.get("DBOS_SYSTEM_DATABASE_URL", default_db)
    DBOS(config={"name": "watch-example", "system_database_url": url, "log_level": "WARNING"})
    dbos_agent = DBOSAgent(agent, live_events=True)  # built before DBOS.launch()
    DBOS.launch()
    asyncio.run(main())
    DBOS.destroy()
