"""Quickstart, Prefect: each agent run is a flow run, each model request and tool call a task run.

Start a server first (`prefect server start`) and point the script at it
(`export PREFECT_API_URL=http://127.0.0.1:4200/api`), then run
`python examples/quickstart_prefect.py`.
"""

import asyncio
import sys

from prefect.settings import get_current_settings
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel

from durable_agents.prefect import PrefectAgent, TaskConfig

# TestModel needs no API key: it calls every tool once, then answers with what they returned.
# The name is required: the flow and its tasks are named after it.
agent = Agent(TestModel(), name="weather")


@agent.tool_plain
def forecast(city: str) -> str:
    """Tools do the I/O; each call is a task run."""
    return f"sunny in {city}"


# Build it at module level: a process that resumes a run finds the agent by its name.
prefect_agent = PrefectAgent(agent, model_task_config=TaskConfig(retries=2))


async def main() -> None:
    api_url = get_current_settings().api.url
    if not api_url:  # without a server, Prefect would start a temporary one for this process only
        sys.exit("Set PREFECT_API_URL to a running server's API (`prefect server start`).")
    result = await prefect_agent.run("What is the weather in Paris?")
    print(result.output)
    print("flow runs: prefect flow-run ls --flow-name weather, on", api_url)


if __name__ == "__main__":
    asyncio.run(main())
