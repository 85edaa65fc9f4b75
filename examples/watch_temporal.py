"""Watching a Temporal workflow from outside: its agent events, from offset 0, then live.

`live_events=True` keeps each run's events in the workflow (rebuilt by replay);
`watch(workflow_id, client=client)` reads them with a query, from any process with a client.
Here the watcher joins while the run is in its second tool call and still gets every event.

Start a dev server first (`temporal server start-dev`), then run
`python examples/watch_temporal.py`. It connects to `TEMPORAL_ADDRESS` (default
`localhost:7233`) and runs its own worker in this process.
"""

import asyncio
import os
import uuid

from pydantic_ai import Agent
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin, TemporalAgent, uses_agents
from durable_agents.testing import tool_loop_model

agent = Agent(tool_loop_model(2, tool_name="lookup"), name="watched_geography")
second_call = asyncio.Event()


@agent.tool_plain
async def lookup(i: int) -> str:
    """Any I/O: an activity. The second call lets the watcher start first."""
    if i == 1:
        second_call.set()
        await asyncio.sleep(0.5)
    return ["Mexico City", "about 22 million people"][i]


temporal_agent = TemporalAgent(agent, live_events=True)


@uses_agents(temporal_agent)
@workflow.defn
class WatchedWorkflow:
    @workflow.run
    async def run(self, prompt: str) -> str:
        return (await temporal_agent.run(prompt)).output


async def main() -> None:
    address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    client = await Client.connect(address, plugins=[DurableAgentsPlugin()])
    workflow_id = f"watched-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue="watch-example", workflows=[WatchedWorkflow]):
        handle = await client.start_workflow(
            WatchedWorkflow.run,
            "Capital of Mexico, and its size?",
            id=workflow_id,
            task_queue="watch-example",
        )
        await second_call.wait()  # the watcher joins late
        async for offset, event in temporal_agent.watch(workflow_id, client=client):
            print(offset, event.event_kind)
        print("output:", await handle.result())


# The workflow sandbox re-imports this module: keep side effects behind the guard.
if __name__ == "__main__":
    asyncio.run(main())
