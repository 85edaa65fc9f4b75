"""Agents and workflows shared by the Temporal tests (kept free of test-only imports: the sandbox re-imports it)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import (
    AgentStreamEvent,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import UsageLimits
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from durable_agents._history import HISTORY_CACHE
from durable_agents.temporal import ActivityConfig, HistoryLimit, HistoryLimitReached, TemporalAgent, uses_agents
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
        return (await growth_agents[k].run("go", usage_limits=UsageLimits(request_limit=None))).output


# Big tool results under a small payload limit: a resent history must be split over several activities.
bulky_base = Agent(tool_loop_model(8, final="ok"), name="bulky")


@bulky_base.tool_plain(name="step")
async def bulky_step(i: int) -> str:
    if i == 7:
        HISTORY_CACHE.clear(live=False)  # the next model activity runs as if on a worker that never saw the run
    return f"{i:04d}" + "y" * 7_000


bulky_agent = TemporalAgent(bulky_base, max_payload_bytes=20_000)


@workflow.defn
class BulkyWorkflow:
    @workflow.run
    async def run(self) -> str:
        return (await bulky_agent.run("go")).output


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


# Agent-level and model-stream events reach a handler that runs in activities, on the worker.
HANDLED: list[str] = []


async def record_events(ctx: RunContext[Any], stream: Any) -> None:
    event: AgentStreamEvent
    async for event in stream:
        HANDLED.append(type(event).__name__)


# Crash tests: a killed worker's tool activity is retried after its start-to-close timeout, so keep it short.
crash_agent = TemporalAgent(
    build_agent("crash", ROUNDS, counter=EnvCounter()),
    toolset_activity_config={"agent": ActivityConfig(start_to_close_timeout=timedelta(seconds=3))},
)
handler_agent = TemporalAgent(build_agent("handler", 2), event_stream_handler=record_events)
# `step` runs inline in the workflow instead of as an activity; sync code runs in the workflow without threads.
inline_base = Agent(tool_loop_model(3), name="inline")


@inline_base.tool_plain
def step(i: int) -> str:  # a sync tool, inline in the workflow
    return f"r{i}"


@inline_base.instructions
def be_brief() -> str:  # sync instructions, evaluated in the workflow
    return "Be brief."


inline_agent = TemporalAgent(inline_base, tool_activity_config={"step": None})
# A model string: built only in its model activity, so a workflow-only worker needs no credentials. The Agent keeps
# the string (`defer_model_check`) instead of building the provider on import. (Chat completions: the API of the
# tests' fake OpenAI server.)
keyless_agent = TemporalAgent(Agent("openai-chat:gpt-4o", name="keyless", defer_model_check=True))


@workflow.defn
class AgentWorkflow:
    """Runs one of the small agents above by name."""

    @workflow.run
    async def run(self, name: str) -> str:
        agent = {
            "handler": handler_agent,
            "inline": inline_agent,
            "loop": loop_agent,
            "crash": crash_agent,
            "keyless": keyless_agent,
        }[name]
        return (await agent.run("go")).output


@dataclass
class Deps:
    handle: Any


deps_agent = TemporalAgent(Agent(TestModel(), name="deps", deps_type=Deps))

big_agent_base = Agent(tool_loop_model(1), name="big")


@big_agent_base.tool_plain(name="step")
async def big_step(i: int) -> str:
    return "x" * 3_000_000


big_agent = TemporalAgent(big_agent_base)


class ForeignPart:
    """Looks like a message part, but is not one of pydantic-ai's."""

    part_kind = "user-prompt"
    content = "hello"


@workflow.defn
class MisuseWorkflow:
    """Does one thing that must fail the workflow with a typed error."""

    @workflow.run
    async def run(self, kind: str) -> str:
        if kind == "unregistered_model":
            return (await loop_agent.run("go", model=TestModel())).output
        if kind == "unserializable_deps":
            return (await deps_agent.run("go", deps=Deps(handle=object()))).output
        if kind == "big_result":
            return (await big_agent.run("go")).output
        if kind == "run_handler":
            return (await loop_agent.run("go", event_stream_handler=record_events)).output
        if kind == "prompt_surrogate":
            return (await loop_agent.run("bad \ud800 prompt")).output
        if kind == "history_strings":
            return (await loop_agent.run("go", message_history=["hello", "world"])).output  # pyright: ignore[reportArgumentType]
        if kind == "history_foreign_part":
            history: Any = [ModelRequest(parts=[ForeignPart()])]  # pyright: ignore[reportArgumentType]
            return (await loop_agent.run("go", message_history=history)).output
        raise ValueError(kind)


# Operations tests. Slow models: each request records `model:<step>:<attempt>:<start time>:<worker pid>`.
def slow_model(rounds: int, seconds: float, retry_seconds: float | None = None) -> FunctionModel:
    async def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        attempt = activity.info().attempt
        step = sum(isinstance(p, ToolReturnPart) for m in messages if isinstance(m, ModelRequest) for p in m.parts)
        EnvCounter().bump(f"model:{step}:{attempt}:{time.time():.3f}:{os.getpid()}")
        await asyncio.sleep(seconds if attempt == 1 or retry_seconds is None else retry_seconds)
        if step < rounds:
            return ModelResponse(parts=[ToolCallPart("step", {"i": step}, tool_call_id=f"call_{step}")])
        return ModelResponse(parts=[TextPart(f"answered after {step} tool calls")])

    return FunctionModel(respond)


def slow_agent(name: str, model: FunctionModel, config: ActivityConfig) -> TemporalAgent[None, str]:
    agent = Agent(model, name=name)

    @agent.tool_plain
    async def step(i: int) -> str:
        return f"r{i}"

    return TemporalAgent(agent, model_activity_config=config)


# 5 s per model request under a 2 s heartbeat timeout.
slowbeat_agent = slow_agent("slowbeat", slow_model(1, 5.0), ActivityConfig(heartbeat_timeout=timedelta(seconds=2)))
# A 30 s model request whose worker is killed; the retry answers at once.
slowcrash_agent = slow_agent(
    "slowcrash", slow_model(0, 30.0, retry_seconds=0.0), ActivityConfig(heartbeat_timeout=timedelta(seconds=3))
)


@uses_agents(slowbeat_agent, slowcrash_agent)
@workflow.defn
class SlowWorkflow:
    """Runs a slow agent by name; the agents are declared on the class, so no plugin needs to list them."""

    @workflow.run
    async def run(self, name: str) -> str:
        agent = {"slowbeat": slowbeat_agent, "slowcrash": slowcrash_agent}[name]
        return (await agent.run("go")).output


declared_agent = TemporalAgent(build_agent("declared", 1))


@workflow.defn
class DeclaredWorkflow:
    """Declares its agent with the class attribute."""

    __durable_agents__: ClassVar[list[TemporalAgent[None, str]]] = [declared_agent]

    @workflow.run
    async def run(self) -> str:
        return (await declared_agent.run("go")).output


# Registered on no worker: its first activity is never picked up, or only by workers that lack it.
orphan_agent = TemporalAgent(
    build_agent("orphan", 1),
    activity_config=ActivityConfig(
        schedule_to_start_timeout=timedelta(seconds=2),
        retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=2),
    ),
)


@workflow.defn
class OrphanWorkflow:
    @workflow.run
    async def run(self) -> str:
        return (await orphan_agent.run("go")).output


ALL_AGENTS = [loop_agent, parallel_agent, *growth_agents.values(), long_agent, handler_agent, inline_agent]
ALL_AGENTS += [crash_agent, deps_agent, big_agent, bulky_agent, keyless_agent]
ALL_WORKFLOWS = [LoopWorkflow, ParallelWorkflow, GrowthWorkflow, LongRunWorkflow, AgentWorkflow, MisuseWorkflow]
ALL_WORKFLOWS += [BulkyWorkflow, SlowWorkflow]


@workflow.defn(name="LoopWorkflow")
class ChangedLoopWorkflow:
    """`LoopWorkflow` with a code change that breaks determinism (replay tests expect it to be caught)."""

    @workflow.run
    async def run(self, prompt: str) -> str:
        return (await parallel_agent.run(prompt)).output
