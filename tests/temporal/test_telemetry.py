"""Telemetry on Temporal when workflow code replays: nothing is emitted twice, pydantic-ai's own spans included."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import pytest
from pydantic_ai import Agent
from temporalio.client import Client
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin
from tests.parity.scenarios import ROUNDS
from tests.parity.temporal_app import TEMPORAL_AGENTS, ParityWorkflow
from tests.telemetry_support import has_ancestor, memory_exporter, ours, records

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]


async def test_replaying_every_workflow_task_emits_each_span_once_with_pydantic_ai_instrumentation(
    client: Client,
) -> None:
    exporter = memory_exporter()
    exporter.clear()
    previous = Agent._instrument_default  # pyright: ignore[reportPrivateUsage]
    Agent.instrument_all(True)
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    try:
        # No workflow cache: every workflow task replays the workflow from its first event.
        async with Worker(
            client,
            task_queue=queue,
            workflows=[ParityWorkflow],
            plugins=[DurableAgentsPlugin(TEMPORAL_AGENTS["parity_rounds"])],
            max_cached_workflows=0,
        ):
            output = await client.execute_workflow(
                ParityWorkflow.run,
                args=["parity_rounds", "go", "run"],
                id=f"wf-{uuid.uuid4().hex[:12]}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=60),
            )
    finally:
        Agent.instrument_all(previous)
    assert output == "done: r0, r1, r2, r3"
    finished = records(exporter.get_finished_spans())
    runs, units = ours(finished)
    assert len(runs) == 1
    outcomes = Counter(str(u.attributes["durable_agents.unit.outcome"]) for u in units)
    # Each unit execution once: K+1 model requests, K tool calls, and the model units that found the history gone
    # with the evicted workflow (a miss, then the resend that is one of the K+1 requests).
    assert outcomes["response"] == ROUNDS + 1
    assert outcomes["return"] == ROUNDS
    assert set(outcomes) <= {"response", "return", "miss"}
    assert all(has_ancestor(unit, runs[0], finished) for unit in units)
    pydantic_ai = Counter(s.name.split(" ")[0] for s in finished if s.scope.startswith("pydantic-ai"))
    # One agent run, K+1 model requests, K tool calls, as in a run without replays.
    assert pydantic_ai == {"invoke_agent": 1, "chat": ROUNDS + 1, "execute_tool": ROUNDS}
    agent_span = next(s for s in finished if s.name.startswith("invoke_agent"))
    assert has_ancestor(agent_span, runs[0], finished)
