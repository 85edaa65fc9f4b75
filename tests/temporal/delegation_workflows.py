"""The flight-booking delegation shape on Temporal (see `tests/parity/delegation_app.py`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import UsageLimits
from temporalio import workflow

from durable_agents.temporal import TemporalAgent
from tests.parity.delegation_app import PROMPT, build

BOOKING, SEARCH = build(TemporalAgent)


@workflow.defn
class BookingWorkflow:
    @workflow.run
    async def run(self, request_limit: int | None = None) -> dict[str, Any]:
        limits = None if request_limit is None else UsageLimits(request_limit=request_limit)
        result = await BOOKING.run(PROMPT, usage_limits=limits)
        return {"output": result.output, "usage": dataclasses.asdict(result.usage)}


def _stuck_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if any(isinstance(m, ModelRequest) and any(p.part_kind == "tool-return" for p in m.parts) for m in messages):
        return ModelResponse(parts=[TextPart("done")])
    return ModelResponse(parts=[ToolCallPart("delegate", {}, tool_call_id="delegate_0")])


_stuck_search = Agent(FunctionModel(_stuck_model), name="stuck_search")
# The delegate's model requests go to a task queue no worker polls: its child workflow waits on them for good.
STUCK_SEARCH = TemporalAgent(_stuck_search, model_activity_config={"task_queue": "nobody-polls-this"})
_stuck_booking = Agent(FunctionModel(_stuck_model), name="stuck_booking")


@_stuck_booking.tool
async def delegate(ctx: RunContext[None]) -> str:
    return (await STUCK_SEARCH.run("find", usage=ctx.usage)).output


STUCK_BOOKING = TemporalAgent(_stuck_booking)


@workflow.defn
class StuckBookingWorkflow:
    """A run whose sub-agent never gets an answer, to be cancelled."""

    @workflow.run
    async def run(self) -> str:
        return (await STUCK_BOOKING.run("book")).output
