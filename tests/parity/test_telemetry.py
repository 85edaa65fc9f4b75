"""Telemetry on every engine: one span per durable run and one per unit execution, all in the caller's trace."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from tests.telemetry_support import has_ancestor, memory_exporter, ours, records

from .conftest import Runner
from .scenarios import ROUNDS

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def spans() -> object:
    exporter = memory_exporter()
    exporter.clear()
    return exporter


async def test_a_k_round_run_emits_one_span_per_unit_and_one_per_run_under_the_callers_span(
    run: Runner, spans: object
) -> None:
    exporter = memory_exporter()
    with trace.get_tracer("tests").start_as_current_span("caller") as caller:
        assert await run("parity_rounds", "go") == "done: r0, r1, r2, r3"
    finished = records(exporter.get_finished_spans())
    runs, units = ours(finished)
    assert [s.name for s in runs] == ["durable_agents run parity_rounds"]
    labels = sorted(s.attributes["durable_agents.unit.label"] for s in units)
    # K rounds: K+1 model requests, K tool calls, each executed once.
    assert labels == sorted(
        ["parity_rounds.model"] * (ROUNDS + 1) + ["parity_rounds.toolset.agent.call/round_step"] * ROUNDS
    )
    (run_span,) = runs
    assert all(has_ancestor(unit, run_span, finished) for unit in units)
    # The run is in the caller's trace, under the caller's span (across processes: Temporal headers, DBOS workflow
    # input, Prefect run arguments).
    assert run_span.trace_id == caller.get_span_context().trace_id
    assert run_span.parent_id == caller.get_span_context().span_id
    assert {s.attributes["durable_agents.engine"] for s in units} == {run_span.attributes["durable_agents.engine"]}
    model_units = [s for s in units if s.attributes["durable_agents.unit.kind"] == "model"]
    assert all(s.attributes["gen_ai.usage.input_tokens"] > 0 for s in model_units)
    assert all(s.attributes["durable_agents.unit.outcome"] == "response" for s in model_units)
