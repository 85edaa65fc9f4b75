"""Quickstart, local engine: the agent's model requests and tool calls run as units, in-process.

No server and no API key: `python examples/quickstart_local.py`. The local engine is not durable;
it runs the same units, names and checks as the durable engines, so it is the place to try an
agent before deploying it.
"""

import asyncio

from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel

from durable_agents import durable
from durable_agents.testing import record_units

# TestModel needs no API key: it calls every tool once, then answers with what they returned.
# With a real model, write Agent("openai:gpt-5", name="weather") and set OPENAI_API_KEY.
agent = Agent(TestModel(), name="weather")  # the name is required: units are named after it


@agent.tool_plain
def forecast(city: str) -> str:
    """Tools do the I/O; each call is a unit of the engine."""
    return f"sunny in {city}"


durable_agent = durable(agent, engine="local")


async def main() -> None:
    with record_units() as units:
        result = await durable_agent.run("What is the weather in Paris?")
    print(result.output)
    print("units:", units.labels)


if __name__ == "__main__":
    asyncio.run(main())
