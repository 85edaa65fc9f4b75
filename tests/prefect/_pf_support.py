"""Shared pieces of the Prefect tests: agents with file-counted tools, and reading runs from the Prefect API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, TaskRun
from prefect.client.schemas.sorting import FlowRunSort
from pydantic_ai import Agent, RunContext

from durable_agents.testing import CallCounter, tool_loop_model


def counted_agent(name: str, rounds: int, tmp: Path, *, deps_type: type[Any] = type(None)) -> Agent[Any, str]:
    """An agent whose model and `step` tool count their executions in files under `tmp`."""
    agent: Agent[Any, str] = Agent(
        tool_loop_model(rounds, counter=CallCounter(tmp / "model.log")), name=name, deps_type=deps_type
    )
    tool_log = tmp / "tools.log"

    @agent.tool
    def step(ctx: RunContext[Any], i: int) -> str:
        with tool_log.open("a") as f:
            f.write(f"{i}\n")
        return f"r{i}" if ctx.deps is None else f"r{i}:{ctx.deps}"

    return agent


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def flow_runs_of(flow_name: str) -> list[FlowRun]:
    """Flow runs of a flow, oldest first."""
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])), sort=FlowRunSort.EXPECTED_START_TIME_ASC
        )
    return list(runs)


async def task_runs_of(flow_run_id: UUID, *, settle: float = 20.0) -> list[TaskRun]:
    """Task runs of a flow run, in start order, once the server has recorded them all.

    Prefect records task runs from events, a moment after the flow run returns: wait until every task run
    is in a final state and their number stops changing.
    """
    deadline = time.monotonic() + settle
    previous: list[TaskRun] | None = None
    async with get_client() as client:
        while True:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            done = all(r.state is not None and r.state.is_final() for r in runs)
            if (done and previous is not None and len(previous) == len(runs)) or time.monotonic() > deadline:
                break
            previous = list(runs)
            await asyncio.sleep(0.5)
    return sorted(runs, key=lambda r: (r.start_time or r.expected_start_time or r.created, r.created))  # type: ignore[return-value]
