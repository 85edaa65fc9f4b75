"""Sub-agents on DBOS: pydantic-ai's flight-booking delegation shape, with both agents durable.

A booking agent's tool runs a search agent (`await search_agent.run(..., usage=ctx.usage)`).
Both are `DBOSAgent`s, so the search agent's run is a DBOS child workflow of the booking run, with
its own steps, and its usage is added to the booking run's. Scripted models: no API key needed.

Run: `python examples/delegation.py`. DBOS uses `DBOS_SYSTEM_DATABASE_URL` if it is set, else
SQLite in a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from pathlib import Path

from dbos import DBOS
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from durable_agents.dbos import DBOSAgent


def _returns(messages: list[ModelMessage]) -> list[ToolReturnPart]:
    return [
        p
        for m in messages
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, ToolReturnPart)
    ]


def search_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Looks up two airlines, then lists what it found."""
    found = _returns(messages)
    if len(found) < 2:
        airline = ["AK Air", "Polar Wings"][len(found)]
        return ModelResponse(parts=[ToolCallPart("find_flight", {"airline": airline})])
    return ModelResponse(parts=[TextPart("; ".join(str(r.content) for r in found))])


def booking_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Asks the search agent (through its tool), then books the first flight it found."""
    found = _returns(messages)
    if not found:
        return ModelResponse(parts=[ToolCallPart("search_flights", {"destination": "ANC"})])
    return ModelResponse(parts=[TextPart(f"Booked: {str(found[0].content).split(';')[0]}")])


search = Agent(FunctionModel(search_model), name="search_agent")


@search.tool_plain
def find_flight(airline: str) -> str:
    """Look up an airline's flight (a step of the search agent's child workflow)."""
    return f"{airline} SFO-ANC 09:15"


search_agent = DBOSAgent(search)

booking = Agent(FunctionModel(booking_model), name="booking_agent", deps_type=type(None))


@booking.tool
async def search_flights(ctx: RunContext[None], destination: str) -> str:
    """Search flights with the search agent.

    The plain pydantic-ai delegation code: it names a DBOSAgent, so it runs in the booking
    workflow and the search agent's run is a child workflow.
    """
    result = await search_agent.run(f"Find flights to {destination}", usage=ctx.usage)
    return result.output


booking_agent = DBOSAgent(booking)


async def main() -> None:
    """Book a flight and show the search agent's child workflow."""
    url = os.environ.get("DBOS_SYSTEM_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite:///{Path(tmp) / 'delegation.sqlite'}"
        DBOS(
            config={
                "name": "delegation-example",
                "system_database_url": url,
                "log_level": "WARNING",
            }
        )
        DBOS.launch()
        try:
            run_id = f"trip-{uuid.uuid4().hex[:8]}"
            result = await booking_agent.run("Book me a flight to Anchorage", run_id=run_id)
            print(result.output)
            print(f"usage: {result.usage.requests} requests, {result.usage.tool_calls} tool calls")
            children = [
                w
                for w in await DBOS.list_workflows_async(name=search_agent.workflow_name)
                if w.parent_workflow_id == run_id
            ]
            assert len(children) == 1 and result.usage.requests == 5, (children, result.usage)
            print(f"child workflow {children[0].workflow_id} of {run_id}: {children[0].status}")
        finally:
            DBOS.destroy()


if __name__ == "__main__":
    asyncio.run(main())
