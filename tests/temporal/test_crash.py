"""A worker process killed inside a tool activity; a new worker process finishes the workflow."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from opentelemetry import trace
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from durable_agents.temporal import history_stats
from durable_agents.testing import CallCounter
from durable_agents.testing._crash import CRASH_EXIT_CODE
from tests.telemetry_support import SPANS_FILE_ENV, SpanRecord, has_ancestor, memory_exporter, ours, read_spans_file

from . import workflows as w
from .conftest import new_id, stop_workers

pytestmark = [pytest.mark.temporal, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]


def _start_worker(
    address: str, queue: str, counter: Path, crash: str | None, role: str = "all"
) -> subprocess.Popen[str]:
    env = {**os.environ, "DURABLE_AGENTS_COUNTER": str(counter), "PYTHONPATH": str(ROOT)}
    env.pop("DURABLE_AGENTS_CRASH", None)
    if crash:
        env["DURABLE_AGENTS_CRASH"] = crash
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.temporal.crash_worker", address, queue, role],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


MODEL, CALL = "crash.model", "crash.toolset.agent.call/step"
LABEL = "durable_agents.unit.label"
ROUNDS = w.ROUNDS


def _labels(units: list[SpanRecord]) -> list[str]:
    return sorted(str(u.attributes["durable_agents.unit.label"]) for u in units)


@pytest.fixture
def spans_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file that the worker processes this test starts append their spans to."""
    path = tmp_path / "spans.jsonl"
    monkeypatch.setenv(SPANS_FILE_ENV, str(path))
    return path


def _one_run_over_each_unit_once(spans_file: Path) -> tuple[list[SpanRecord], SpanRecord, list[SpanRecord]]:
    """The spans the workers wrote, after checking: one run span, a span per unit of the K=4 run, all under it."""
    spans = read_spans_file(spans_file)
    runs, units = ours(spans)
    assert _labels(units) == sorted([MODEL] * (ROUNDS + 1) + [CALL] * ROUNDS)
    assert [r.name for r in runs] == ["durable_agents run crash"]
    assert all(has_ancestor(unit, runs[0], spans) for unit in units)
    return spans, runs[0], units


async def test_worker_killed_in_tool_two_of_four_resumes_on_a_new_worker(
    temporal_env: WorkflowEnvironment, client: Client, tmp_path: Path
) -> None:
    address = temporal_env.client.service_client.config.target_host
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    counter = tmp_path / "model_calls.txt"
    first = _start_worker(address, queue, counter, crash="crash.toolset.agent.call/step@2")
    second: subprocess.Popen[str] | None = None
    try:
        handle = await client.start_workflow(w.AgentWorkflow.run, "crash", id=new_id(), task_queue=queue)
        code = await asyncio.to_thread(first.wait, 60)
        assert code == CRASH_EXIT_CODE
        # Two model requests completed before the crash, in the dead worker.
        assert CallCounter(counter).calls == ["model:0", "model:1"]
        second = _start_worker(address, queue, counter, crash=None)
        output = await asyncio.wait_for(handle.result(), 60)
    finally:
        stop_workers(first, second)
    assert output == "done: r0, r1, r2, r3"
    # Every model request ran exactly once: none completed before the crash was executed again.
    assert CallCounter(counter).calls == [f"model:{i}" for i in range(5)]
    # The killed tool activity is retried in place. The new worker's history cache is empty, but it replays the
    # workflow in its own process, so its model activities read the history from the workflow's live log: no resend.
    model, call = "crash.model", "crash.toolset.agent.call"
    stats = await history_stats(handle)
    assert stats.activity_types == [model, call, model, call, model, call, model, call, model]


async def test_spans_of_units_completed_before_a_worker_was_killed_are_not_emitted_again_by_the_new_worker(
    temporal_env: WorkflowEnvironment, client: Client, tmp_path: Path, spans_file: Path
) -> None:
    address = temporal_env.client.service_client.config.target_host
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    first = _start_worker(address, queue, tmp_path / "calls.txt", crash=f"{CALL}@2")
    second: subprocess.Popen[str] | None = None
    memory_exporter()  # a tracer provider in this process, for the caller's span
    try:
        with trace.get_tracer("tests").start_as_current_span("caller") as caller:
            handle = await client.start_workflow(w.AgentWorkflow.run, "crash", id=new_id(), task_queue=queue)
        assert await asyncio.to_thread(first.wait, 60) == CRASH_EXIT_CODE
        # Model request 1, tool call 1, model request 2 ended their spans; tool call 2 was cut short, its span never
        # ended; the run span is emitted when the run ends.
        assert _labels(ours(read_spans_file(spans_file))[1]) == [MODEL, MODEL, CALL]
        second = _start_worker(address, queue, tmp_path / "calls.txt", crash=None)
        assert await asyncio.wait_for(handle.result(), 60) == "done: r0, r1, r2, r3"
    finally:
        stop_workers(first, second)
    # The new worker replays the workflow from its first event: still each unit once over both processes (K+1 model
    # requests, K tool calls, the interrupted one included) and one run span, above every unit span.
    spans, run, units = _one_run_over_each_unit_once(spans_file)
    # The interrupted tool call ran again as the activity's second attempt.
    assert sorted(u.attributes["durable_agents.unit.attempt"] for u in units if u.attributes[LABEL] == CALL) == [
        1,
        1,
        1,
        2,
    ]
    # The run span (emitted by the new worker, above the dead worker's unit spans too) is under the caller's span,
    # carried in the workflow's headers.
    caller_context = caller.get_span_context()
    assert (run.trace_id, run.parent_id) == (caller_context.trace_id, caller_context.span_id)
    assert {s.trace_id for s in spans} == {caller_context.trace_id}


async def test_unit_spans_of_an_activity_worker_process_are_under_the_run_span_of_a_workflow_worker_process(
    temporal_env: WorkflowEnvironment, client: Client, tmp_path: Path, spans_file: Path
) -> None:
    address = temporal_env.client.service_client.config.target_host
    queue = f"split-{uuid.uuid4().hex[:8]}"
    workflows = _start_worker(address, queue, tmp_path / "calls.txt", crash=None, role="workflows")
    activities: subprocess.Popen[str] | None = None
    try:
        activities = _start_worker(address, queue, tmp_path / "calls.txt", crash=None, role="activities")
        handle = await client.start_workflow(w.AgentWorkflow.run, "crash", id=new_id(), task_queue=queue)
        assert await asyncio.wait_for(handle.result(), 60) == "done: r0, r1, r2, r3"
    finally:
        stop_workers(workflows, activities)
    # The units ran in the activity worker, the run span was emitted by the workflow worker: one per unit, one run,
    # every unit span under it.
    spans, run, _ = _one_run_over_each_unit_once(spans_file)
    assert {s.trace_id for s in spans} == {run.trace_id}
