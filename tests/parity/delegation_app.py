"""pydantic-ai's flight-booking delegation shape, for every engine: a booking agent whose tool runs a search agent.

`build(wrap)` builds both agents and wraps each with `wrap` (a durable agent class, or `None` for the bare
agents); the booking agent's tool calls the wrapped search agent with `usage=ctx.usage`, as in pydantic-ai's
example. The search agent calls its tool `find` twice (one model response each), then answers; the booking agent
calls `search_flights` once, then answers with what the search found. `find` records 1000 input tokens of its own
on `ctx.usage`, so the total usage shows whether what tools record is carried back from their units.

Models count their requests in the file named by the environment variable `DELEGATION_CALLS` (if set), one line
per request: `<agent>:<n>`, where n is the number of tool results the request carries, so a request sent again is
the same line twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RunUsage

CALLS_ENV = "DELEGATION_CALLS"
PROMPT = "Book me a flight to ANC"
EXPECTED = "booked: found r0, r1 for find flights to ANC"


def _returns(messages: list[ModelMessage]) -> list[ToolReturnPart]:
    return [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]


def _count(agent: str, n: int) -> None:
    path = os.environ.get(CALLS_ENV)
    if path:
        with open(path, "a") as f:
            f.write(f"{agent}:{n}\n")


def search_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    returns = _returns(messages)
    _count("search", len(returns))
    if len(returns) < 2:
        return ModelResponse(parts=[ToolCallPart("find", {"i": len(returns)}, tool_call_id=f"find_{len(returns)}")])
    first = messages[0]
    prompt = (
        next(str(p.content) for p in first.parts if p.part_kind == "user-prompt")
        if isinstance(first, ModelRequest)
        else ""
    )
    return ModelResponse(parts=[TextPart(f"found {', '.join(str(r.content) for r in returns)} for {prompt}")])


def booking_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    returns = _returns(messages)
    _count("booking", len(returns))
    if not returns:
        return ModelResponse(parts=[ToolCallPart("search_flights", {"destination": "ANC"}, tool_call_id="search_0")])
    return ModelResponse(parts=[TextPart(f"booked: {returns[0].content}")])


def build(wrap: Callable[[Agent[Any, str]], Any] | None) -> tuple[Any, Any]:
    """The booking agent and the search agent, each wrapped with `wrap` (bare when it is `None`)."""
    search_agent = Agent(FunctionModel(search_model), name="search_agent")

    @search_agent.tool
    def find(ctx: RunContext[None], i: int) -> str:
        # Usage a plain tool records (a paid lookup, say) is carried back from its unit into the run's usage.
        ctx.usage.incr(RunUsage(input_tokens=1000))
        return f"r{i}"

    search = search_agent if wrap is None else wrap(search_agent)
    booking_agent = Agent(FunctionModel(booking_model), name="booking_agent")

    @booking_agent.tool
    async def search_flights(ctx: RunContext[None], destination: str) -> str:
        result = await search.run(f"find flights to {destination}", usage=ctx.usage, usage_limits=ctx.usage_limits)
        return result.output

    booking = booking_agent if wrap is None else wrap(booking_agent)
    return booking, search
