"""A small typed user module: what a user of durable_agents writes, checked by pyright in strict mode.

Never imported or run: `tests/test_typing.py` type-checks it. Every wrapper keeps the agent's deps and output types,
and a run's result carries the output type (or a run's own `output_type`), never `Any`.
"""

# pyright: strict

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_type, reveal_type

from pydantic import BaseModel
from pydantic_ai import Agent, AgentRunResult
from pydantic_ai.agent import AgentRunEvents

from durable_agents import DurableAgent, durable
from durable_agents.dbos import DBOSAgent
from durable_agents.local import LocalAgent
from durable_agents.prefect import PrefectAgent
from durable_agents.temporal import TemporalAgent


@dataclass
class MyDeps:
    user_id: int


class MyOut(BaseModel):
    answer: str


class Other(BaseModel):
    score: float


agent = Agent("test", name="typed", deps_type=MyDeps, output_type=MyOut)
assert_type(agent, Agent[MyDeps, MyOut])

temporal_agent = TemporalAgent(agent)
dbos_agent = DBOSAgent(agent)
prefect_agent = PrefectAgent(agent)
local_agent = LocalAgent(agent)
assert_type(temporal_agent, TemporalAgent[MyDeps, MyOut])
assert_type(dbos_agent, DBOSAgent[MyDeps, MyOut])
assert_type(prefect_agent, PrefectAgent[MyDeps, MyOut])
assert_type(local_agent, LocalAgent[MyDeps, MyOut])

assert_type(durable(agent, "temporal"), TemporalAgent[MyDeps, MyOut])
assert_type(durable(agent, engine="dbos"), DBOSAgent[MyDeps, MyOut])
assert_type(durable(agent, "prefect"), PrefectAgent[MyDeps, MyOut])
assert_type(durable(agent, "local", require=["parallel_tools"]), LocalAgent[MyDeps, MyOut])
assert_type(durable(agent), DurableAgent[MyDeps, MyOut])


def by_name(engine_name: str) -> DurableAgent[MyDeps, MyOut]:
    return durable(agent, engine_name, require=["durable"])


async def run_each(deps: MyDeps) -> None:
    result = await temporal_agent.run("x", deps=deps)
    reveal_type(result.output)
    assert_type(result, AgentRunResult[MyOut])
    assert_type(result.output, MyOut)
    assert_type((await dbos_agent.run("x", deps=deps, run_id="r1")).output, MyOut)
    assert_type((await prefect_agent.run("x", deps=deps)).output, MyOut)
    assert_type((await local_agent.run("x", deps=deps)).output, MyOut)
    assert_type((await durable(agent, "dbos").run("x", deps=deps)).output, MyOut)
    assert_type((await durable(agent).run("x", deps=deps)).output, MyOut)

    # A run's own output type wins over the agent's.
    assert_type((await temporal_agent.run("x", deps=deps, output_type=Other)).output, Other)
    assert_type((await dbos_agent.run("x", deps=deps, output_type=Other)).output, Other)
    assert_type(local_agent.run_sync("x", deps=deps).output, MyOut)
    assert_type(local_agent.run_sync("x", deps=deps, output_type=Other).output, Other)

    async with temporal_agent.iter("x", deps=deps) as agent_run:
        assert_type(agent_run.result, AgentRunResult[MyOut] | None)
    async with local_agent.iter("x", deps=deps, output_type=Other) as agent_run:
        assert_type(agent_run.result, AgentRunResult[Other] | None)
    async with prefect_agent.run_stream("x", deps=deps) as stream:
        assert_type(await stream.get_output(), MyOut)
    async with local_agent.run_stream("x", deps=deps, output_type=Other) as stream:
        assert_type(await stream.get_output(), Other)
    async with dbos_agent.run_stream_events("x", deps=deps) as events:
        assert_type(events, AgentRunEvents[MyOut])
    async with dbos_agent.run_stream_events("x", deps=deps, output_type=Other) as events:
        assert_type(events, AgentRunEvents[Other])
