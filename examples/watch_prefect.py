"""Watching a Prefect flow run from outside: its agent events, from offset 0, then live.

`live_events=True` stores each run's events as artifacts of its flow run; `watch(run_id)` polls
them from any process that reaches the server. Here the watcher joins while the run is in its
second tool call and still gets every event.

Start a server first (`prefect server start`) and point the script at it
(`export PREFECT_API_URL=http://127.0.0.1:4200/api`), then run `python examples/watch_prefect.py`.
"""

import asyncio
import sys
import uuid

from prefect.settings import get_current_settings
from pydantic_ai import Agent

from durable_agents.prefect import PrefectAgent
from durable_agents.testing import tool_loop_model

agent = Agent(tool_loop_model(2, tool_name="lookup"), name="watched_geography")
second_call = asyncio.Event()


@agent.tool_plain
async def lookup(i: int) -> str:
    """Any I/O: a task run. The second call lets the watcher start first."""
    if i == 1:
        second_call.set()
        await asyncio.sleep(0.5)
    return ["Mexico City", "about 22 million people"][i]


prefect_agent = PrefectAgent(agent, live_events=True)


async def main() -> None:
    if not get_current_settings().api.url:  # without a server, Prefect would start a temporary one
        sys.exit("Set PREFECT_API_URL to a running server's API (`prefect server start`).")
    run_id = f"watched-{uuid.uuid4().hex[:8]}"
    run = asyncio.create_task(prefect_agent.run("Capital of Mexico, and its size?", run_id=run_id))
    await second_call.wait()  # the watcher joins late
    async for offset, event in prefect_agent.watch(run_id):
        print(offset, event.event_kind)
    print("output:", (await run).output)


if __name__ == "__main__":
    asyncio.run(main())
