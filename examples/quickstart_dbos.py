"""Quickstart, DBOS: each agent run is a DBOS workflow, each model request and tool call a step.

DBOS is a library, not a server: `python examples/quickstart_dbos.py` keeps its journal in a
SQLite file (in a temporary directory here), or in the PostgreSQL database of
`DBOS_SYSTEM_DATABASE_URL` when that is set.
"""

import asyncio
import os
import tempfile
import uuid

from dbos import DBOS
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel

from durable_agents.dbos import DBOSAgent

# TestModel needs no API key: it calls every tool once, then answers with what they returned.
# The name is required: the workflow and its steps are named after it.
agent = Agent(TestModel(), name="weather")


@agent.tool_plain
def forecast(city: str) -> str:
    """Tools do the I/O; each call is a DBOS step of its own, no decorator needed."""
    return f"sunny in {city}"


dbos_agent = DBOSAgent(agent)  # build every DBOSAgent before DBOS.launch()


async def main() -> None:
    # A SQLite file is right for one process; use PostgreSQL when several processes share the runs.
    default_url = f"sqlite:///{tempfile.mkdtemp()}/quickstart.sqlite"
    DBOS(
        config={
            "name": "quickstart",
            "system_database_url": os.environ.get("DBOS_SYSTEM_DATABASE_URL", default_url),
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    # The workflow id: started again with the same id, a run attaches to the first one.
    run_id = f"weather-{uuid.uuid4().hex[:8]}"
    result = await dbos_agent.run("What is the weather in Paris?", run_id=run_id)
    print(result.output)
    for step in await DBOS.list_workflow_steps_async(run_id):
        print("step", step["function_id"], step["function_name"])
    DBOS.destroy()


if __name__ == "__main__":
    asyncio.run(main())
