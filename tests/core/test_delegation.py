"""Sub-agents on the local engine: the delegate's run is nested in the parent's container, its usage adds up."""

from __future__ import annotations

import pytest
from pydantic_ai import Agent
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import UsageLimits

from durable_agents._delegation import referenced_agents
from durable_agents.local import LocalAgent
from durable_agents.testing import record_units
from tests.parity.delegation_app import EXPECTED, PROMPT, build


async def test_the_delegating_tool_runs_in_the_container_and_usage_adds_up() -> None:
    bare_booking, _ = build(None)
    bare = await bare_booking.run(PROMPT)
    booking, _ = build(LocalAgent)
    with record_units() as units:
        result = await booking.run(PROMPT)
    assert result.output == bare.output == EXPECTED
    assert result.usage == bare.usage
    assert result.usage.requests == 5
    # The booking tool is not a unit: it runs in the container, and the search agent's units run nested in it.
    assert "booking_agent.toolset.agent.call/search_flights" not in units.labels
    assert units.labels.count("search_agent.model") == 3


async def test_a_usage_limit_exceeded_in_the_delegate_fails_the_run() -> None:
    booking, _ = build(LocalAgent)
    with pytest.raises(UsageLimitExceeded):
        await booking.run(PROMPT, usage_limits=UsageLimits(request_limit=3))


def test_tools_that_name_a_durable_agent_of_the_engine_are_found_through_helpers_and_closures() -> None:
    sub = LocalAgent(Agent(TestModel(), name="sub"))
    registry = {"sub": sub}

    async def helper(prompt: str) -> str:
        return (await sub.run(prompt)).output

    async def via_helper(x: str) -> str:
        return await helper(x)

    async def via_lambda(x: str) -> str:
        start = lambda: sub.run(x)  # noqa: E731  # a name the nested code loads
        return (await start()).output

    async def via_dict(x: str) -> str:
        return (await registry["sub"].run(x)).output

    assert referenced_agents(via_helper, "local") == [sub]
    assert referenced_agents(via_lambda, "local") == [sub]
    assert referenced_agents(via_dict, "local") == []  # not found: such a tool is marked with config None
    assert referenced_agents(via_helper, "dbos") == []  # only agents of the same engine

    async def reads_only(x: str) -> str:
        return f"{x} {sub.name} {len(sub.units)}"  # names the agent, runs nothing

    def reads_via_helper(x: str) -> str:
        return x + str(reads_only)

    assert referenced_agents(reads_only, "local") == []  # such a tool stays in its unit
    assert referenced_agents(reads_via_helper, "local") == []

    parent = Agent(TestModel(), name="parent")
    parent.tool_plain(via_helper)
    parent.tool_plain(via_dict)
    assert LocalAgent(parent).sub_agents() == [sub]
