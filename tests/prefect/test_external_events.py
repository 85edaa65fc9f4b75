"""Waits for external events on Prefect: the answer is a flow run input, written by any process, read by the run.

The agent of `scripts/wait_agent.py` calls `step`, then `delete` (which needs approval, asked with
`RequestInput`), then answers; `scripts/answer_event.py` answers a token from another process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _pf_support import flow_runs_of, lines
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.external_events import wait_for_external_event
from pydantic_ai.models.test import TestModel
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import DeferredToolRequests

from durable_agents import fail_external_event, resolve_external_event
from durable_agents._external import encode_token
from durable_agents.exceptions import ConfigurationError, EventTokenError
from durable_agents.prefect import PrefectAgent
from durable_agents.testing._crash import CRASH_ENV, CRASH_EXIT_CODE

pytestmark = pytest.mark.prefect

SCRIPTS = Path(__file__).parent / "scripts"
APPROVE = json.dumps({"approvals": {"call_delete": True}})


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _start(work: Path, name: str, crash: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV} | ({CRASH_ENV: crash} if crash else {})
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / "wait_agent.py"), "start", str(work), name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _resume(work: Path, name: str, flow_run_id: str) -> None:
    resumed = subprocess.run(
        [sys.executable, str(SCRIPTS / "wait_agent.py"), "resume", flow_run_id, str(work), name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]


def _answer(token: str, *answers: str) -> list[str]:
    """Send `answers` (`resolve`, JSON payload, or `fail`, reason, ...) from another process; its report per answer."""
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "answer_event.py"), token, *answers],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def _token(work: Path, process: subprocess.Popen[str]) -> str:
    """The token the run's `ask` got, once it has asked (within 60 s)."""
    deadline = time.monotonic() + 60
    while not (work / "token.txt").exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the run did not ask within 60 s"
        time.sleep(0.1)
    return (work / "token.txt").read_text()


def _approval_agent(
    asked: list[tuple[str, DeferredToolRequests]], ran: list[str], *, timeout: timedelta | None = None
) -> PrefectAgent[None, str]:
    async def ask(ctx: RunContext[None], requests: DeferredToolRequests, token: str) -> None:
        asked.append((token, requests))

    agent = Agent(TestModel(), name=_name("ext_approval"), capabilities=[RequestInput(ask, timeout=timeout)])

    @agent.tool_plain(requires_approval=True)
    def delete(path: str) -> str:
        ran.append(path)
        return f"deleted {path}"

    return PrefectAgent(agent, event_poll_seconds=0.2)


async def _first(items: list[str] | list[tuple[str, DeferredToolRequests]], run: asyncio.Task[Any]) -> None:
    """Wait until the run has asked (within 60 s); a run that ended without asking fails the test with its error."""
    deadline = time.monotonic() + 60
    while not items:
        if run.done():
            run.result()
            pytest.fail("the run ended without asking")
        assert time.monotonic() < deadline, "the run did not ask within 60 s"
        await asyncio.sleep(0.05)


async def _waiting_run() -> tuple[asyncio.Task[AgentRunResult[str]], list[tuple[str, DeferredToolRequests]], list[str]]:
    """A run of `_approval_agent` that has asked and waits; what its `ask` got, and what its tool ran."""
    asked: list[tuple[str, DeferredToolRequests]] = []
    ran: list[str] = []
    run = asyncio.create_task(_approval_agent(asked, ran).run("go"))
    await _first(asked, run)
    return run, asked, ran


async def test_another_process_answers_and_the_run_goes_on_with_it() -> None:
    run, asked, ran = await _waiting_run()
    token, requests = asked[0]
    assert not run.done() and ran == []
    approve = json.dumps({"approvals": {call.tool_call_id: True for call in requests.approvals}})
    deny = json.dumps({"approvals": {call.tool_call_id: False for call in requests.approvals}})

    # The second answer is ignored: the wait has the first.
    assert await asyncio.to_thread(_answer, token, "resolve", approve, "resolve", deny) == [
        "delivered=True",
        "delivered=False",
    ]
    result = await run
    assert ran == ["a"] and "deleted a" in result.output
    assert len(asked) == 1


async def _asked_and_recorded(name: str, process: subprocess.Popen[str]) -> None:
    """Wait until the server records the run's `ask` task as completed (within 120 s): the run then waits."""
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the run did not finish asking within 120 s"
        flow_runs = await flow_runs_of(name)
        if flow_runs:
            async with get_client() as client:
                task_runs = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_runs[0].id]))
                )
            if any(t.name.startswith("ask/") and t.state is not None and t.state.is_completed() for t in task_runs):
                return
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_an_answer_sent_while_the_process_is_down_is_read_by_the_resumed_run(tmp_path: Path) -> None:
    name = _name("ext_crash")
    process = _start(tmp_path, name)
    token = await asyncio.to_thread(_token, tmp_path, process)
    await _asked_and_recorded(name, process)
    os.kill(process.pid, signal.SIGKILL)  # the flow's process dies while the run waits
    process.communicate(timeout=30)
    assert lines(tmp_path / "model.log") == ["model:0", "model:1"]
    [flow_run] = await flow_runs_of(name)
    assert flow_run.state is not None and flow_run.state.is_running()  # a killed run stays RUNNING

    # Sent while the process is down: the server keeps it.
    assert await resolve_external_event(token, json.loads(APPROVE)) is True
    time.sleep(3.5)  # its heartbeat (every second) is stale after three: the run is dead, resume takes it
    _resume(tmp_path, name, str(flow_run.id))

    assert (tmp_path / "output.txt").read_text() == "done: r0, deleted a"
    # The model requests before the wait ran once; `ask` ran once (its task's stored result was reused).
    assert lines(tmp_path / "model.log") == ["model:0", "model:1", "model:2"]
    assert lines(tmp_path / "asks.log") == ["call_delete"]
    assert lines(tmp_path / "deleted.log") == ["a"]
    assert await resolve_external_event(token, json.loads(APPROVE)) is False
    [after] = await flow_runs_of(name)
    assert after.id == flow_run.id and after.state is not None and after.state.is_completed()


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["call/delete@1", ".model@3"])
async def test_an_approved_tool_runs_once_across_a_crash_right_after_the_approval(tmp_path: Path, crash: str) -> None:
    # The process dies as the approved tool's task starts, or as the model task after it starts.
    name = _name("ext_approved")
    process = _start(tmp_path, name, crash=crash)
    token = await asyncio.to_thread(_token, tmp_path, process)
    await _asked_and_recorded(name, process)
    assert await resolve_external_event(token, json.loads(APPROVE)) is True
    _, err = await asyncio.to_thread(process.communicate, timeout=120)
    assert process.returncode == CRASH_EXIT_CODE, err[-2000:]
    [flow_run] = await flow_runs_of(name)
    time.sleep(3.5)  # its heartbeat (every second) is stale after three: the run is dead, resume takes it
    _resume(tmp_path, name, str(flow_run.id))

    assert (tmp_path / "output.txt").read_text() == "done: r0, deleted a"
    assert lines(tmp_path / "deleted.log") == ["a"]
    assert lines(tmp_path / "asks.log") == ["call_delete"]
    assert lines(tmp_path / "model.log") == ["model:0", "model:1", "model:2"]


async def test_a_failed_wait_denies_the_call_with_the_reason() -> None:
    run, asked, ran = await _waiting_run()
    token = asked[0][0]
    assert await fail_external_event(token, "nobody is on call") is True
    assert await resolve_external_event(token, {"approvals": {}}) is False
    result = await run
    assert ran == [] and len(asked) == 1
    assert "nobody is on call" in str(result.all_messages())


async def test_a_timed_out_wait_ends_and_a_late_answer_is_ignored() -> None:
    asked: list[tuple[str, DeferredToolRequests]] = []
    ran: list[str] = []
    wrapper = _approval_agent(asked, ran, timeout=timedelta(seconds=1))
    result = await wrapper.run("go")
    assert ran == []
    assert "No answer arrived within 0:00:01" in str(result.all_messages())
    assert await resolve_external_event(asked[0][0], {"approvals": {}}) is False


async def test_tokens_of_unknown_runs_and_waits_are_refused() -> None:
    with pytest.raises(EventTokenError, match="has no flow run"):
        await resolve_external_event(
            encode_token("prefect", {"flow_run": str(uuid.uuid4()), "run": "r", "key": "k"}), 1
        )
    with pytest.raises(EventTokenError, match="names no flow run"):
        await resolve_external_event(encode_token("prefect", {"flow_run": "nope", "run": "r", "key": "k"}), 1)
    with pytest.raises(EventTokenError, match="api_url"):
        await resolve_external_event(encode_token("prefect", {"flow_run": "nope"}), 1, client=object())
    # A real flow run that never waited (the token was made up or belongs to another wait).
    wrapper = PrefectAgent(Agent(TestModel(), name=_name("ext_no_wait")))
    await wrapper.run("go")
    [flow_run] = await flow_runs_of(wrapper.name)
    token = encode_token("prefect", {"flow_run": str(flow_run.id), "run": f"{flow_run.id}:0", "key": "input.1"})
    with pytest.raises(EventTokenError, match="never waited"):
        await fail_external_event(token, "no")


async def test_wait_for_external_event_in_an_inline_tool_gets_the_answer() -> None:
    agent = Agent(TestModel(), name=_name("ext_tool"))
    tokens: list[str] = []

    @agent.tool_plain
    async def ask_human(question: str) -> str:
        answer = await wait_for_external_event("human", ask=tokens.append)
        return f"human said {answer}"

    wrapper = PrefectAgent(agent, tool_task_config_by_name={"ask_human": None}, event_poll_seconds=0.2)
    run = asyncio.create_task(wrapper.run("go"))
    await _first(tokens, run)
    assert await resolve_external_event(tokens[0], "yes") is True
    assert "human said yes" in (await run).output
    assert len(tokens) == 1


def test_the_approval_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parents[2] / "examples" / "prefect_approval.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "approval needed for: delete_file({'path': 'a'})",
        "delivered: True",
        "second answer delivered: False",
        'output: {"delete_file":"deleted a"}',
    ]


def test_a_poll_interval_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="above 0"):
        PrefectAgent(Agent(TestModel(), name=_name("ext_poll")), event_poll_seconds=0)
