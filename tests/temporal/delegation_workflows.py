"""The flight-booking delegation shape on Temporal (see `tests/parity/delegation_app.py`)."""

from __future__ import annotations

import dataclasses
from typing import Any

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
