"""External events on a real DBOS (SQLite and PostgreSQL): `RequestInput` waits answered from other processes,
across crashes; failures, timeouts, second answers and bad tokens; approvals bound to the call's arguments."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from dbos import DBOS, DBOSClient
from pydantic_ai.tools import DeferredToolRequests
from pydantic_core import to_json

from durable_agents import approve, fail_external_event, resolve_external_event
from durable_agents._external import encode_token
from durable_agents.dbos import DBOSAgent, StepConfig
from durable_agents.exceptions import ApprovalMismatchError, EventTokenError, WaitInUnitError
from durable_agents.testing import CRASH_ENV
from durable_agents.testing._crash import CRASH_EXIT_CODE
from tests.core.test_approvals import asking_agent, tamper
from tests.dbos.test_recovery import finish, lines
from tests.dbos.wait_app import REQUESTS, build_agent

pytestmark = pytest.mark.dbos

Launch = Callable[[], None]
APP = Path(__file__).with_name("wait_app.py")
ROOT = Path(__file__).parents[2]


def start(*args: str, crash: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.Popen(
        [sys.executable, str(APP), *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


async def answer_elsewhere(mode: str, url: str, token: str, answer: str) -> bool:
    """Resolve (or fail) the wait from another process, which has not launched DBOS."""
    result = await asyncio.to_thread(finish, start(mode, url, token, answer))
    return bool(result["delivered"])


async def asked(workdir: Path, proc: subprocess.Popen[str] | None = None) -> tuple[str, DeferredToolRequests]:
    """The token and requests `ask` got, once it ran."""
    for _ in range(6000):
        if (workdir / "asks").exists() and (workdir / "requests.json").exists():
            token = lines(workdir / "asks")[0]
            return token, REQUESTS.validate_json((workdir / "requests.json").read_bytes())
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended before it asked: {proc.communicate()}")
        await asyncio.sleep(0.02)
    raise AssertionError("the run never asked")


async def ask_recorded(url: str, workflow_id: str, step: str) -> None:
    """Wait until the workflow's journal holds `ask`'s step: from then on, a crash does not run `ask` again."""
    client = await asyncio.to_thread(DBOSClient, system_database_url=url)
    try:
        for _ in range(3000):
            steps = await client.list_workflow_steps_async(workflow_id)
            if any(s["function_name"] == step for s in steps):
                return
            await asyncio.sleep(0.02)
    finally:
        await asyncio.to_thread(client.destroy)
    raise AssertionError(f"step {step} was never recorded")


def approval_json(requests: DeferredToolRequests) -> str:
    return to_json(approve(requests)).decode()


async def test_a_run_waits_and_another_process_approves_it(db_url: str, launch: Launch, tmp_path: Path) -> None:
    dbos_agent = DBOSAgent(build_agent(tmp_path, "wait_ok"))
    launch()
    run = asyncio.create_task(dbos_agent.run("go", run_id="wait-ok"))
    token, requests = await asked(tmp_path)
    assert token.startswith("da1.dbos.") and not run.done()
    assert await answer_elsewhere("resolve", db_url, token, approval_json(requests)) is True
    result = await run
    assert result.output == "done: deleted a"
    assert lines(tmp_path / "tool_calls") == ["a"]
    assert len(lines(tmp_path / "asks")) == 1  # `ask` ran once, in its step
    steps = [s["function_name"] for s in await DBOS.list_workflow_steps_async("wait-ok")]
    assert steps.count("wait_ok.ask/deferred_tool_calls.1") == 1 and "DBOS.recv" in steps
    # The wait has its answer: another one is ignored, from here or from elsewhere.
    assert await resolve_external_event(token, approve(requests)) is False
    assert await fail_external_event(token, "too late", system_database_url=db_url) is False


async def test_failed_and_timed_out_waits_and_tokens_that_name_no_wait(
    db_url: str, launch: Launch, tmp_path: Path
) -> None:
    failing = DBOSAgent(build_agent(tmp_path / "f", "wait_fail"))
    timing_out = DBOSAgent(build_agent(tmp_path / "t", "wait_timeout", timeout=timedelta(milliseconds=200)))
    (tmp_path / "f").mkdir()
    (tmp_path / "t").mkdir()
    launch()

    run = asyncio.create_task(failing.run("go", run_id="wait-fail"))
    token, _ = await asked(tmp_path / "f")
    assert await fail_external_event(token, "nobody is on call") is True
    result = await run
    assert "nobody is on call" in str(result.all_messages())
    assert not (tmp_path / "f" / "tool_calls").exists()
    assert await resolve_external_event(token, {"approvals": {}}) is False

    result = await timing_out.run("go", run_id="wait-timeout")
    assert "No answer arrived within" in str(result.all_messages())
    late, _ = await asked(tmp_path / "t")
    assert await resolve_external_event(late, {"approvals": {}}) is False

    with pytest.raises(EventTokenError, match="No DBOS workflow 'nope'"):
        await resolve_external_event(encode_token("dbos", {"workflow": "nope", "topic": "t"}), 1)
    with pytest.raises(EventTokenError, match="never began"):
        await resolve_external_event(encode_token("dbos", {"workflow": "wait-fail", "topic": "t"}), 1)
    with pytest.raises(EventTokenError, match="no workflow id"):
        await resolve_external_event(encode_token("dbos", {"key": "x"}), 1)


async def test_wait_for_external_event_in_an_inline_tool(launch: Launch) -> None:
    agent, tokens, _ = asking_agent("wait_inline")
    dbos_agent = DBOSAgent(agent, tool_step_configs={"ask_human": None})
    launch()
    run = asyncio.create_task(dbos_agent.run("go"))
    while not tokens:
        await asyncio.sleep(0.01)
    assert await resolve_external_event(tokens[0], "yes") is True
    assert "human said yes" in (await run).output
    assert len(tokens) == 1


async def test_a_wait_inside_a_tool_step_fails_the_run_with_the_fix_and_is_not_retried(launch: Launch) -> None:
    agent, _, calls = asking_agent("wait_in_step")
    dbos_agent = DBOSAgent(agent, step_config=StepConfig(retries_allowed=True, max_attempts=3, interval_seconds=0))
    launch()
    with pytest.raises(WaitInUnitError, match="tool_step_configs"):
        await asyncio.wait_for(dbos_agent.run("go"), 30)
    assert len(calls) == 1


@pytest.mark.slow
async def test_killed_while_waiting_the_answer_sent_during_the_outage_is_not_lost(db_url: str, tmp_path: Path) -> None:
    run = start("run", db_url, "wf-wait", str(tmp_path))
    token, requests = await asked(tmp_path, run)
    await ask_recorded(db_url, "wf-wait", "approver.ask/deferred_tool_calls.1")
    run.kill()  # a crash while the run waits
    await asyncio.to_thread(run.communicate)
    assert await answer_elsewhere("resolve", db_url, token, approval_json(requests)) is True  # nobody runs the run

    result = await asyncio.to_thread(finish, start("resume", db_url, "wf-wait", str(tmp_path)))
    assert result["output"] == "done: deleted a"
    # The model request before the wait was not repeated; `ask` ran once; the tool once.
    assert lines(tmp_path / "model_calls") == ["model:0", "model:1"]
    assert len(lines(tmp_path / "asks")) == 1
    assert lines(tmp_path / "tool_calls") == ["a"]


async def test_an_in_run_approval_for_changed_arguments_is_refused(launch: Launch, tmp_path: Path) -> None:
    dbos_agent = DBOSAgent(build_agent(tmp_path, "wait_tampered"))
    launch()
    run = asyncio.create_task(dbos_agent.run("go"))
    token, requests = await asked(tmp_path)
    (call,) = requests.approvals
    assert await resolve_external_event(token, approve(dataclasses.replace(call, args={"path": "/etc"}))) is True
    with pytest.raises(ApprovalMismatchError, match="other arguments"):
        await run
    assert not (tmp_path / "tool_calls").exists()


async def test_a_deferred_approval_is_refused_when_the_history_changed_the_arguments(
    launch: Launch, tmp_path: Path
) -> None:
    dbos_agent = DBOSAgent(build_agent(tmp_path, "deferred_tampered", deferred=True))
    launch()
    first = await dbos_agent.run("go")
    assert isinstance(first.output, DeferredToolRequests)
    results = approve(first.output)
    with pytest.raises(ApprovalMismatchError):
        await dbos_agent.run(message_history=tamper(first.all_messages(), path="b"), deferred_tool_results=results)
    assert not (tmp_path / "tool_calls").exists()
    done = await dbos_agent.run(message_history=first.all_messages(), deferred_tool_results=results)
    assert done.output == "done: deleted a" and lines(tmp_path / "tool_calls") == ["a"]


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["approver.toolset.agent.call/delete@1", "approver.model@2"])
async def test_an_approved_tool_runs_once_across_a_crash_right_after_the_approval(
    crash: str, sqlite_url: str, tmp_path: Path
) -> None:
    run = start("run", sqlite_url, "wf-approved", str(tmp_path), crash=crash)
    token, requests = await asked(tmp_path, run)
    assert await answer_elsewhere("resolve", sqlite_url, token, approval_json(requests)) is True
    out, err = await asyncio.to_thread(run.communicate, timeout=120)
    assert run.returncode == CRASH_EXIT_CODE, f"{out}\n{err}"  # died as the tool step (or the next model step) began

    result = await asyncio.to_thread(finish, start("resume", sqlite_url, "wf-approved", str(tmp_path)))
    assert result["output"] == "done: deleted a"
    assert lines(tmp_path / "tool_calls") == ["a"]
    assert len(lines(tmp_path / "asks")) == 1
    assert json.loads(REQUESTS.dump_json(requests))["approvals"][0]["args"] == {"path": "a"}


@pytest.mark.slow
def test_the_human_approval_example_prints_what_the_dbos_page_says(tmp_path: Path) -> None:
    example = ROOT / "examples" / "human_approval.py"
    page = (ROOT / "docs" / "dbos.md").read_text()
    shown = page[page.index("# not run: the output of the example above\n") :].split("```")[0].splitlines()[1:]
    env = {k: v for k, v in os.environ.items() if k != "DBOS_SYSTEM_DATABASE_URL"}  # a SQLite file of its own
    proc = subprocess.run(
        [sys.executable, str(example)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == shown
