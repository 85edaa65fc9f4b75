"""Agents and workflows shared by the Temporal tests (kept free of test-only imports: the sandbox re-imports it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage
from temporalio import workflow

from durable_agents.temporal import ActivityConfig, HistoryLimit, HistoryLimitReached, TemporalAgent
from durable_agents.testing import CallCounter, tool_loop_model


class EnvCounter(CallCounter):
    """A call counter whose file is named by `DURABLE_AGENTS_COUNTER` when a request is made (crash tests)."""

    def __init__(self) -> None:
        pass

    @property
    def path(self) -> Path:  # type: ignore[override]
        return Path(os.environ.get("DURABLE_AGENTS_COUNTER", os.devnull))


ROUNDS = 4


def build_agent(name: str, rounds: int, *, parallel: int = 1, counter: CallCounter | None = None) -> Agent[None, str]:
    agent = Agent(tool_loop_model(rounds, parallel=parallel, counter=counter), name=name)

    @agent.tool_plain
    async def step(i: int) -> str:
        return f"r{i}"

    return agent


loop_agent = TemporalAgent(
    build_agent("loop", ROUNDS, counter=EnvCounter()),
    model_activity_config=ActivityConfig(start_to_close_timeout=timedelta(seconds=30)),
)
parallel_agent = TemporalAgent(build_agent("parallel", 2, parallel=3))


@workflow.defn
class LoopWorkflow:
    @workflow.run
    async def run(self, prompt: str) -> str:
        return (await loop_agent.run(prompt)).output


@workflow.defn
class ParallelWorkflow:
    @workflow.run
    async def run(self, prompt: str) -> str:
        return (await parallel_agent.run(prompt)).output


# K-round agents for the history growth measurements.
GROWTH_KS = (8, 16, 32, 64)
growth_agents = {k: TemporalAgent(build_agent(f"growth{k}", k)) for k in GROWTH_KS}


@workflow.defn
class GrowthWorkflow:
    @workflow.run
    async def run(self, k: int) -> str:
        return (await growth_agents[k].run("go")).output


# A run over a history limit continues as new, carrying its conversation.
long_agent = TemporalAgent(build_agent("long", 12), history_limit=HistoryLimit(max_events=40, when_suggested=False))


@dataclass
class LongInput:
    prompt: str | None
    history: list[ModelMessage] | None = None
    generation: int = 0


@dataclass
class LongOutput:
    output: str
    generations: int


@workflow.defn
class LongRunWorkflow:
    @workflow.run
    async def run(self, inp: LongInput) -> LongOutput:
        try:
            result = await long_agent.run(inp.prompt, message_history=inp.history)
        except HistoryLimitReached as exc:
            workflow.continue_as_new(LongInput(None, exc.messages, inp.generation + 1))
        return LongOutput(result.output, inp.generation)
