"""A module-level PrefectAgent, as an application defines it, for `runs resume --app tests.cli.prefect_app:agent`."""

from __future__ import annotations

from pydantic_ai import Agent

from durable_agents.prefect import PrefectAgent
from durable_agents.testing import tool_loop_model

_agent = Agent(tool_loop_model(2), name="cli_prefect_geo")


@_agent.tool_plain
async def step(i: int) -> str:
    return f"r{i}"


agent = PrefectAgent(_agent)

_live = Agent(tool_loop_model(2, tool_name="live_step"), name="cli_prefect_live")


@_live.tool_plain
async def live_step(i: int) -> str:
    return f"r{i}"


live_agent = PrefectAgent(_live, live_events=True)
