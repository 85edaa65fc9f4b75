"""The agent of the live-events tests: four tool rounds, then a streamed answer; the fourth round can be held.

The model is a `FunctionModel` that calls `step(n)` for n = 1..4 and then streams its answer in chunks. Test hooks
(module state, shared with the units: every engine here runs its units in the test process):

- `HOLD`: while set, `step(4)` sets `REACHED` and waits for `GATE`, so a watcher can join "after three rounds";
- `STALL`: while set, the final answer stops after its first chunk, sets `STALLED` and waits for `GATE` (a model
  that goes quiet mid-answer);
- `FLAKY`: how many more times the final answer fails midway (after streaming two chunks) and how many more times
  `step(2)` fails, each with a retryable `ConnectionError`, so each unit is retried.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import timedelta

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig

from durable_agents import LiveEvents
from durable_agents.temporal import TemporalAgent

ROUNDS = 4
ANSWER = ["All ", "four ", "steps ", "are ", "done."]

HOLD = threading.Event()
REACHED = threading.Event()
GATE = threading.Event()
STALL = threading.Event()
STALLED = threading.Event()
FLAKY = {"model": 0, "tool": 0}


def reset(*, hold: bool = False, flaky: int = 0, stall: bool = False) -> None:
    """Fresh hooks for a test."""
    for event in (HOLD, REACHED, GATE, STALL, STALLED):
        event.clear()
    if hold:
        HOLD.set()
    if stall:
        STALL.set()
    FLAKY.update(model=flaky, tool=flaky)


def _rounds(messages: list[ModelMessage]) -> int:
    return sum(
        isinstance(part, ToolReturnPart) for message in messages if message.kind == "request" for part in message.parts
    )


def _call(n: int) -> tuple[str, str, str]:
    return "step", f'{{"n": {n}}}', f"call-{n}"


def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    done = _rounds(messages)
    if done < ROUNDS:
        name, args, call_id = _call(done + 1)
        return ModelResponse(parts=[ToolCallPart(name, args, tool_call_id=call_id)])
    return ModelResponse(parts=[TextPart("".join(ANSWER))])


async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str | DeltaToolCalls]:
    done = _rounds(messages)
    if done < ROUNDS:
        name, args, call_id = _call(done + 1)
        yield {0: DeltaToolCall(name=name, json_args=args, tool_call_id=call_id)}
        return
    for i, chunk in enumerate(ANSWER):
        if i == 2 and FLAKY["model"] > 0:
            FLAKY["model"] -= 1
            raise ConnectionError("the model's connection dropped midway")
        if i == 1 and STALL.is_set():
            STALLED.set()
            for _ in range(6000):  # at most 60 s, without blocking the event loop
                if GATE.is_set():
                    break
                await asyncio.sleep(0.01)
        yield chunk


agent = Agent(FunctionModel(respond, stream_function=stream), name="live_steps")


@agent.tool_plain
async def step(n: int) -> str:
    """Do step `n`."""
    if n == 2 and FLAKY["tool"] > 0:
        FLAKY["tool"] -= 1
        raise ConnectionError("step 2 lost its connection")
    if n == ROUNDS and HOLD.is_set():
        REACHED.set()
        await asyncio.to_thread(GATE.wait, 60)
    return f"step {n} done"


FAST_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=50), backoff_coefficient=1.0, maximum_attempts=5)

replayed_agent = Agent(FunctionModel(respond, stream_function=stream), name="live_steps_replayed", tools=[step])
"""The same agent under another name, for a second wrapper on one engine."""

LIVE = LiveEvents(delta_interval=0)  # every delta its own record: a retried model unit repeats each of them
BATCHED = LiveEvents(delta_interval=0.2)

batched_agent = Agent(FunctionModel(respond, stream_function=stream), name="live_steps_batched", tools=[step])
"""The same agent again, for wrappers that batch deltas by time."""

temporal_agent = TemporalAgent(agent, activity_config=ActivityConfig(retry_policy=FAST_RETRY), live_events=LIVE)
batched_temporal_agent = TemporalAgent(batched_agent, live_events=BATCHED)


@workflow.defn
class LiveStepsWorkflow:
    @workflow.run
    async def run(self, prompt: str, batched: bool = False) -> str:
        result = await (batched_temporal_agent if batched else temporal_agent).run(prompt)
        return str(result.output)
