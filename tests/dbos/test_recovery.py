"""Crash recovery on a real DBOS: a process killed inside a tool call, resumed by a new process or another executor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from durable_agents.testing import CRASH_ENV
from durable_agents.testing._crash import CRASH_EXIT_CODE
from tests.dbos.crash_app import ROUNDS, build_agent
from tests.telemetry_support import SPANS_FILE_ENV, has_ancestor, ours, read_spans_file

pytestmark = [pytest.mark.dbos, pytest.mark.slow]

APP = Path(__file__).with_name("crash_app.py")
ROOT = Path(__file__).parents[2]
CALL = "crashy.toolset.agent.call/step"


def start(
    *args: str,
    crash: str | None = None,
    stdin: bool = False,
    executor: str = "local",
    parallel: int = 1,
    agent: str = "crashy",
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env["EXECUTOR_ID"] = executor
    env["PARALLEL"] = str(parallel)
    env["AGENT"] = agent
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.Popen(
        [sys.executable, str(APP), *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
    )


def finish(proc: subprocess.Popen[str], expect: int = 0) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == expect, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    return json.loads(out.splitlines()[-1]) if expect == 0 else {}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
async def expected_output(tmp_path: Path) -> str:
    """What the bare agent answers."""
    scratch = tmp_path / "bare"
    scratch.mkdir()
    return (await build_agent(scratch).run("go")).output


async def test_killed_in_tool_call_2_of_4_resumes_in_a_new_process(
    db_url: str, tmp_path: Path, expected_output: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    args = (db_url, "wf-crash", str(work))

    finish(start("run", *args, crash=f"{CALL}@2"), expect=CRASH_EXIT_CODE)
    assert lines(work / "tool_calls") == ["0"]  # tool 1 ran; the process died as tool call 2 started
    assert lines(work / "model_calls") == ["model:0", "model:1"]

    result = finish(start("resume", *args))
    assert result["output"] == expected_output == "done: r0, r1, r2, r3"
    # Nothing that completed before the crash ran again: each model request and tool call happened once.
    assert lines(work / "tool_calls") == [str(i) for i in range(ROUNDS)]
    assert lines(work / "model_calls") == [f"model:{i}" for i in range(ROUNDS + 1)]
    executed = result["executed"]
    assert isinstance(executed, list)
    assert executed[0] == CALL  # the interrupted tool call is the first unit the new process runs
    assert [e for e in executed if e == CALL] == [CALL] * 3  # tool calls 2, 3 and 4


async def test_spans_of_units_completed_before_a_crash_are_not_emitted_again_by_the_recovery(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    spans_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv(SPANS_FILE_ENV, str(spans_file))
    args = (db_url, "wf-crash-spans", str(work))

    finish(start("run", *args, crash=f"{CALL}@2"), expect=CRASH_EXIT_CODE)
    before = read_spans_file(spans_file)
    # Model request 1, tool call 1, model request 2 completed; tool call 2 was cut short, its span never ended.
    assert sorted(s.attributes["durable_agents.unit.label"] for s in ours(before)[1]) == sorted(
        ["crashy.model", CALL, "crashy.model"]
    )
    finish(start("resume", *args))
    spans = read_spans_file(spans_file)
    runs, units = ours(spans)
    # Each unit once over both processes: K+1 model requests, K tool calls (the one the crash cut short never
    # ended its span, and ran again after the recovery); the run span once, from the process that ended the run.
    assert sorted(s.attributes["durable_agents.unit.label"] for s in units) == sorted(
        ["crashy.model"] * (ROUNDS + 1) + [CALL] * ROUNDS
    )
    assert [s.name for s in runs] == ["durable_agents run crashy"]
    assert all(has_ancestor(unit, runs[0], spans) for unit in units)
    # The recovered run stays under the span of the caller that started it (stored with the workflow's input; the
    # caller's own span never ended, its process was killed).
    assert runs[0].parent_id is not None
    assert {s.trace_id for s in spans} == {runs[0].trace_id}


@pytest.mark.postgres
async def test_another_executor_takes_over_a_dead_executors_run(
    pg_url: str, tmp_path: Path, expected_output: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    url = f"{pg_url}/takeover"
    args = (url, "wf-takeover", str(work))

    survivor = start("takeover", *args, "exec-a", stdin=True)
    assert survivor.stdout is not None
    assert json.loads(survivor.stdout.readline()) == {"ready": True}
    finish(start("run", *args, crash=f"{CALL}@3", executor="exec-a"), expect=CRASH_EXIT_CODE)
    assert lines(work / "tool_calls") == ["0", "1"]

    assert survivor.stdin is not None
    survivor.stdin.write("go\n")
    survivor.stdin.flush()
    result = finish(survivor)
    assert result["output"] == expected_output
    assert lines(work / "tool_calls") == [str(i) for i in range(ROUNDS)]
    assert lines(work / "model_calls") == [f"model:{i}" for i in range(ROUNDS + 1)]
    executed = result["executed"]
    assert isinstance(executed, list)
    assert executed[0] == CALL
    assert [e for e in executed if e == CALL] == [CALL] * 2  # tool calls 3 and 4


async def test_parallel_tool_calls_recover_with_each_result_in_its_place(sqlite_url: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    args = (sqlite_url, "wf-parallel", str(work))

    # 3 parallel calls per round; die as the 5th call (the 2nd of round 2) starts.
    finish(start("run", *args, crash=f"{CALL}@5", parallel=3), expect=CRASH_EXIT_CODE)
    assert sorted(lines(work / "tool_calls")[:3]) == ["0", "1", "2"]  # round 1, in any order: they ran in parallel

    result = finish(start("resume", *args, parallel=3))
    # Recorded results were matched to their own calls: a swap would reorder the answer.
    assert result["output"] == "done: " + ", ".join(f"r{i}" for i in range(3 * ROUNDS))
    ran = lines(work / "tool_calls")
    assert sorted(set(ran), key=int) == [str(i) for i in range(3 * ROUNDS)]
    assert ran.count("0") == ran.count("1") == ran.count("2") == 1  # round 1 was checkpointed: not run again
    assert lines(work / "model_calls")[:2] == ["model:0", "model:1"]
    assert lines(work / "model_calls").count("model:0") == lines(work / "model_calls").count("model:1") == 1


async def test_a_restarted_script_with_the_same_run_id_attaches_to_the_crashed_run(
    sqlite_url: str, tmp_path: Path, expected_output: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    args = (sqlite_url, "wf-same-run-id", str(work))

    finish(start("run", *args, crash=f"{CALL}@2"), expect=CRASH_EXIT_CODE)
    assert lines(work / "tool_calls") == ["0"]

    # The same script again: DBOS recovers the run in the background, and `run(run_id=...)` waits for that run
    # instead of starting a second one.
    result = finish(start("run", *args))
    assert result["output"] == expected_output
    assert result["workflows"] == ["wf-same-run-id"]
    assert lines(work / "tool_calls") == [str(i) for i in range(ROUNDS)]
    assert lines(work / "model_calls") == [f"model:{i}" for i in range(ROUNDS + 1)]

    # Once more after it completed: the recorded result, and nothing runs.
    result = finish(start("run", *args))
    assert result["output"] == expected_output
    assert result["executed"] == []
    assert result["workflows"] == ["wf-same-run-id"]
    assert lines(work / "model_calls") == [f"model:{i}" for i in range(ROUNDS + 1)]


async def test_the_data_analyst_example_killed_between_its_two_tools_resumes_with_what_the_first_stored(
    sqlite_url: str, tmp_path: Path
) -> None:
    from tests.parity import data_analyst

    bare = (await data_analyst.analyst_agent.run(data_analyst.PROMPT, deps=data_analyst.AnalystAgentDeps())).output
    args = (sqlite_url, "wf-analyst", str(tmp_path))
    query = "parity_analyst.toolset.agent.call/run_duckdb"

    # `load_dataset` stored the table in deps; the process dies as `run_duckdb`, which reads it, starts.
    finish(start("run", *args, crash=f"{query}@1", agent="analyst"), expect=CRASH_EXIT_CODE)
    result = finish(start("resume", *args, agent="analyst"))
    assert result["output"] == bare
    # The recorded outcome of `load_dataset` carried its deps change: it did not run again, and the query found it.
    assert result["tools"] == ["run_duckdb", "display"]
    model, display = "parity_analyst.model", "parity_analyst.toolset.agent.call/display"
    assert result["executed"] == [query, model, display, model]
