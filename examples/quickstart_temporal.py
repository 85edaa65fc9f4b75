"""Quickstart, Temporal: the agent runs in a workflow; model requests and tool calls are activities.

Start a dev server first (`temporal server start-dev`, the CLI comes with the `temporal` extra),
then run `python examples/quickstart_temporal.py`. It connects to `TEMPORAL_ADDRESS` (default
`localhost:7233`) and runs its own worker in this process.
"""

import asyncio
import os
import uuid

from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin, TemporalAgent, history_stats, uses_agents

# TestModel needs no API key: it calls every tool once, then answers with what they returned.
agent = Agent(TestModel(), name="weather")  # the name is required: activities are named after it


@agent.tool_plain
def forecast(city: str) -> str:
    """Tools do the I/O; each call is an activity."""
    return f"sunny in {city}"


temporal_agent = TemporalAgent(agent)


@uses_agents(temporal_agent)  # a worker running this workflow registers the agent's activities
@workflow.defn
class WeatherWorkflow:
    @workflow.run
    async def run(self, prompt: str) -> str:
        result = await temporal_agent.run(prompt)
        return result.output


async def main() -> None:
    address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    client = await Client.connect(address, plugins=[DurableAgentsPlugin()])
    task_queue = "quickstart"
    async with Worker(client, task_queue=task_queue, workflows=[WeatherWorkflow]):
        handle = await client.start_workflow(
            WeatherWorkflow.run,
            "What is the weather in Paris?",
            id=f"weather-{uuid.uuid4().hex[:8]}",  # `temporal workflow show --workflow-id <id>`
            task_queue=task_queue,
        )
        print(await handle.result())
    print("activities:", (await history_stats(handle)).activity_types)


# The workflow sandbox re-imports this module: keep side effects behind the guard.
if __name__ == "__main__":
    asyncio.run(main())
