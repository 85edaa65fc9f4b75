"""A hard-killed flow run is resumed in a new process; completed model requests, tools and event deliveries are
not executed again, and the model sees the run's prompt unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from _pf_support import flow_runs_of, lines, task_runs_of
from pydantic_ai.messages import ImageUrl

from durable_agents.testing import CRASH_ENV
from durable_agents.testing._crash import CRASH_EXIT_CODE
from tests.telemetry_support import SPANS_FILE_ENV, has_ancestor, ours, read_spans_file

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

SCRIPT = Path(__file__).parent / "scripts" / "crash_agent.py"


def _run(
    *args: str, crash: str | None = None, prompt: str = "plain", seed: str = "1", spans: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env.update({"CRASH_AGENT_PROMPT": prompt, "PYTHONHASHSEED": seed})
    if spans is not None:
        env[SPANS_FILE_ENV] = str(spans)
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("prompt", "seen"),
    [
        ("plain", repr("go")),
        # A prompt that looks like a '<TypeName>' placeholder of Prefect's, and multimodal content.
        ("tag", repr("<task>do it</task>")),
        # (pydantic-ai fills in the media type and identifier of an ImageUrl it sends.)
        (
            "multimodal",
            repr(["look", ImageUrl("https://example.com/x.png", media_type="image/png", identifier="f27cce")]),
        ),
    ],
)
async def test_killed_in_tool_2_of_4_resumes_without_re_executing(tmp_path: Path, prompt: str, seen: str) -> None:
    name = f"crash_{uuid.uuid4().hex[:8]}"
    # Different hash seeds: the deps' set encodes in another order in the resuming process.
    crashed = _run("start", str(tmp_path), name, crash="call/step@2", prompt=prompt, seed="1")
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr[-2000:]
    assert lines(tmp_path / "model.log") == ["model:0", "model:1"]
    assert lines(tmp_path / "tools.log") == ["0"]  # killed as tool 2 started
    assert lines(tmp_path / "events.log") == ["r0"]
    [flow_run] = await flow_runs_of(name)
    assert flow_run.state is not None and flow_run.state.is_running()  # a killed run stays RUNNING

    time.sleep(3.5)  # its heartbeat (every second) is stale after three: the run is dead, resume takes it
    resumed = _run("resume", str(flow_run.id), str(tmp_path), name, seed="2")
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    assert (tmp_path / "output.txt").read_text() == "done: r0, r1, r2, r3"
    # Every model request, tool and event delivery ran exactly once over both processes.
    assert lines(tmp_path / "model.log") == ["model:0", "model:1", "model:2", "model:3", "model:4"]
    assert lines(tmp_path / "tools.log") == ["0", "1", "2", "3"]
    assert lines(tmp_path / "events.log") == ["r0", "r1", "r2", "r3"]
    # The model saw the prompt the run was started with, unchanged.
    assert set(lines(tmp_path / "prompts.log")) == {seen}
    [after] = await flow_runs_of(name)
    assert after.id == flow_run.id and after.state is not None and after.state.is_completed()
    task_runs = await task_runs_of(flow_run.id)
    assert [t.name for t in task_runs].count(f"{name}.toolset.agent.call/step") >= 4
    # A task run the killed process left RUNNING (if the server recorded it before the kill) was marked CRASHED by
    # the resume: nothing stays RUNNING.
    assert all(t.state is not None and t.state.is_final() for t in task_runs)


async def test_spans_of_units_completed_before_the_kill_are_not_emitted_again_by_the_resume(tmp_path: Path) -> None:
    name = f"crash_{uuid.uuid4().hex[:8]}"
    spans_file = tmp_path / "spans.jsonl"
    crashed = _run("start", str(tmp_path), name, crash="call/step@2", spans=spans_file)
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr[-2000:]
    tool = f"{name}.toolset.agent.call/step"
    before = [s.attributes["durable_agents.unit.label"] for s in ours(read_spans_file(spans_file))[1]]
    assert sorted(label for label in before if label != f"{name}.events") == sorted([f"{name}.model"] * 2 + [tool])
    [flow_run] = await flow_runs_of(name)

    time.sleep(3.5)  # the killed run's heartbeat goes stale, so resume takes it
    resumed = _run("resume", str(flow_run.id), str(tmp_path), name, spans=spans_file)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    spans = read_spans_file(spans_file)
    runs, units = ours(spans)
    labels = [str(s.attributes["durable_agents.unit.label"]) for s in units]
    # Each model request and tool call once over both processes; the run span once, from the resuming process.
    assert sorted(label for label in labels if label != f"{name}.events") == sorted([f"{name}.model"] * 5 + [tool] * 4)
    assert [s.name for s in runs] == [f"durable_agents run {name}"]
    assert all(has_ancestor(unit, runs[0], spans) for unit in units)
    # Still under the span of the caller that started the run (its process was killed before that span ended).
    assert runs[0].parent_id is not None
    assert {s.trace_id for s in units} == {runs[0].trace_id}
