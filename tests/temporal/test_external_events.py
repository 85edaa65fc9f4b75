"""Waits for external events on Temporal: an update answers the wait, from another process, across a worker crash."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from durable_agents import configure, fail_external_event, resolve_external_event
from durable_agents._external import decode_token, encode_token
from durable_agents.exceptions import EventTokenError
from durable_agents.temporal import DurableAgentsPlugin
from durable_agents.testing._crash import CRASH_EXIT_CODE

from . import event_workflows as ew
from .conftest import new_id
from .test_crash import _start_worker  # pyright: ignore[reportPrivateUsage]

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]
APPROVE = {"approvals": {"call-1": True}}


@pytest.fixture
async def queue(client: Client) -> AsyncIterator[str]:
    name = f"ext-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=name, workflows=[ew.EventWorkflow], plugins=[DurableAgentsPlugin(*ew.EVENT_AGENTS)]
    ):
        yield name


def _lines(folder: Path, name: str) -> list[str]:
    path = folder / name
    return path.read_text().splitlines() if path.exists() else []


async def _token(folder: Path) -> str:
    """The token `ask` wrote, within 30 s."""
    async with asyncio.timeout(30):
        while not (folder / "token").exists():
            await asyncio.sleep(0.05)
    return (folder / "token").read_text()


async def _start(client: Client, queue: str, agent: str, folder: Path) -> WorkflowHandle[ew.EventWorkflow, str]:
    return await client.start_workflow(ew.EventWorkflow.run, args=[agent, str(folder)], id=new_id(), task_queue=queue)


def _env(temporal_env: WorkflowEnvironment) -> dict[str, str]:
    address = temporal_env.client.service_client.config.target_host
    return {**os.environ, "TEMPORAL_ADDRESS": address, "PYTHONPATH": str(ROOT)}


async def _resolve_elsewhere(env: dict[str, str], token: str, payload: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.temporal.resolve_event", token, payload, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_another_process_answers_the_wait_and_the_run_goes_on_with_it(
    temporal_env: WorkflowEnvironment, client: Client, queue: str, tmp_path: Path
) -> None:
    handle = await _start(client, queue, "ext_approval", tmp_path)
    token = await _token(tmp_path)
    assert decode_token(token)[1]["workflow"] == handle.id
    resolver = await _resolve_elsewhere(_env(temporal_env), token, '{"approvals": {"call-1": true}}')
    out, _ = await asyncio.wait_for(resolver.communicate(), 60)
    assert (resolver.returncode, out.decode().strip()) == (0, "True")
    assert await asyncio.wait_for(handle.result(), 60) == "done: deleted a"
    assert _lines(tmp_path, "asked") == [token]
    assert _lines(tmp_path, "ran") == ["a"]
    assert _lines(tmp_path, "model") == ["request", "request"]
    # The recorded history replays (the update, the ask marker, the memo), and the replay does not ask again.
    replayer = Replayer(workflows=[ew.EventWorkflow], plugins=[DurableAgentsPlugin()])
    await replayer.replay_workflow(await handle.fetch_history())
    assert _lines(tmp_path, "asked") == [token]


async def test_the_console_script_approves_the_wait_and_exits_with_status_0(
    temporal_env: WorkflowEnvironment, client: Client, queue: str, tmp_path: Path
) -> None:
    # A short-lived process with a temporalio client can abort at interpreter exit after its work is done
    # (sdk-python#300, not reproduced here for client-only processes); the console script therefore leaves
    # without the finalization. This checks what that must keep: the status, and the output, flushed first.
    handle = await _start(client, queue, "ext_approval", tmp_path)
    token = await _token(tmp_path)
    script = Path(sys.executable).parent / "durable-agents"
    for attempt in range(2):  # the second answer is ignored, and says so
        proc = await asyncio.create_subprocess_exec(
            str(script), "runs", "approve", token, "--call", "call-1", env=_env(temporal_env),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        expected = "Delivered: the run goes on." if attempt == 0 else "Ignored: the wait already had an answer."
        assert out.decode().strip() == expected
    assert await asyncio.wait_for(handle.result(), 60) == "done: deleted a"
    assert _lines(tmp_path, "ran") == ["a"]


def _stop(proc: subprocess.Popen[str] | None) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


class _Workers:
    """Worker processes of one task queue, started with `start(crash)`, all stopped on exit."""

    def __init__(self, temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
        self.env = _env(temporal_env)
        self.queue = f"extcrash-{uuid.uuid4().hex[:8]}"
        self._counter = tmp_path / "unused"
        self._procs: list[subprocess.Popen[str]] = []

    def start(self, crash: str | None = None) -> subprocess.Popen[str]:
        self._procs.append(_start_worker(self.env["TEMPORAL_ADDRESS"], self.queue, self._counter, crash=crash))
        return self._procs[-1]

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            _stop(proc)


async def _killed_while_waiting(
    workers: _Workers, client: Client, tmp_path: Path
) -> tuple[WorkflowHandle[ew.EventWorkflow, str], str]:
    """A run that waits for an approval, whose only worker was then killed; its handle and token."""
    first = workers.start()
    handle = await _start(client, workers.queue, "ext_approval", tmp_path)
    token = await _token(tmp_path)
    first.kill()
    await asyncio.to_thread(first.wait, 30)
    return handle, token


@pytest.mark.slow
async def test_an_answer_sent_while_no_worker_runs_reaches_the_wait_after_a_crash(
    temporal_env: WorkflowEnvironment, client: Client, tmp_path: Path
) -> None:
    with _Workers(temporal_env, tmp_path) as workers:
        handle, token = await _killed_while_waiting(workers, client, tmp_path)
        resolver = await _resolve_elsewhere(workers.env, token, '{"approvals": {"call-1": true}}')
        workers.start()
        out, _ = await asyncio.wait_for(resolver.communicate(), 90)
        assert (resolver.returncode, out.decode().strip()) == (0, "True")
        assert await asyncio.wait_for(handle.result(), 90) == "done: deleted a"
    # The new worker replayed the run: `ask` was not called again, the request before the wait not sent again.
    assert _lines(tmp_path, "asked") == [token]
    assert _lines(tmp_path, "model") == ["request", "request"]
    assert _lines(tmp_path, "ran") == ["a"]


@pytest.mark.slow
async def test_an_answer_sent_while_no_worker_runs_returns_at_once_and_is_not_lost(
    temporal_env: WorkflowEnvironment, client: Client, tmp_path: Path
) -> None:
    # No worker takes the update: after `update_timeout` the answer goes as a signal, which the server keeps.
    with _Workers(temporal_env, tmp_path) as workers:
        handle, token = await _killed_while_waiting(workers, client, tmp_path)
        configure(event_options={"temporal": {"client": client, "update_timeout": 1}})
        try:  # the options come from `configure`
            assert await asyncio.wait_for(resolve_external_event(token, APPROVE), 30) is True
        finally:
            configure()
        # A second answer while still down: the first one is in the history, so this one is reported ignored.
        second = resolve_external_event(token, {"approvals": {"call-1": False}}, client=client, update_timeout=1)
        assert await asyncio.wait_for(second, 30) is False
        workers.start()
        assert await asyncio.wait_for(handle.result(), 90) == "done: deleted a"
    assert _lines(tmp_path, "asked") == [token]
    assert _lines(tmp_path, "model") == ["request", "request"]
    assert _lines(tmp_path, "ran") == ["a"]
    # Once the run has ended, a late answer is a second one.
    assert await fail_external_event(token, "too late", client=client, update_timeout=1) is False


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["ext_approval.toolset.agent.call/delete@1", "ext_approval.model@2"])
async def test_an_approved_tool_runs_once_across_a_crash_right_after_the_approval(
    temporal_env: WorkflowEnvironment, client: Client, tmp_path: Path, crash: str
) -> None:
    # The worker dies as the approved tool's activity starts, or as the model activity after it starts.
    with _Workers(temporal_env, tmp_path) as workers:
        first = workers.start(crash)
        handle = await _start(client, workers.queue, "ext_approval", tmp_path)
        token = await _token(tmp_path)
        assert await resolve_external_event(token, APPROVE, client=client) is True
        assert await asyncio.to_thread(first.wait, 60) == CRASH_EXIT_CODE
        workers.start()
        assert await asyncio.wait_for(handle.result(), 90) == "done: deleted a"
    assert _lines(tmp_path, "ran") == ["a"]
    assert _lines(tmp_path, "asked") == [token]
    assert _lines(tmp_path, "model") == ["request", "request"]


async def test_a_second_answer_is_ignored_and_reported(
    client: Client, queue: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handle = await _start(client, queue, "ext_approval", tmp_path)
    token = await _token(tmp_path)
    assert await resolve_external_event(token, APPROVE, client=client) is True
    with caplog.at_level(logging.WARNING, logger="durable_agents"):
        assert await resolve_external_event(token, {"approvals": {"call-1": False}}, client=client) is False
    assert "already had an answer" in caplog.text
    assert await asyncio.wait_for(handle.result(), 60) == "done: deleted a"
    # Once the workflow has completed, an answer is still recognised as a second one.
    assert await fail_external_event(token, "too late", client=client) is False


async def test_a_failed_wait_denies_the_call_with_the_reason(client: Client, queue: str, tmp_path: Path) -> None:
    handle = await _start(client, queue, "ext_approval", tmp_path)
    token = await _token(tmp_path)
    engine, address = decode_token(token)
    with pytest.raises(EventTokenError, match="has no wait"):  # a wait this run did not hand out
        await resolve_external_event(encode_token(engine, {**address, "key": "1/other.1"}), APPROVE, client=client)
    assert await fail_external_event(token, "nobody is on call", client=client) is True
    output = await asyncio.wait_for(handle.result(), 60)
    assert "nobody is on call" in output
    assert _lines(tmp_path, "ran") == []


async def test_a_timed_out_wait_ends_and_a_late_answer_is_ignored(client: Client, queue: str, tmp_path: Path) -> None:
    handle = await _start(client, queue, "ext_timeout", tmp_path)
    output = await asyncio.wait_for(handle.result(), 60)
    assert "No answer arrived within" in output
    assert _lines(tmp_path, "ran") == []
    assert await resolve_external_event(await _token(tmp_path), APPROVE, client=client) is False


async def test_an_ask_that_fails_for_good_fails_the_run_without_retries(
    client: Client, queue: str, tmp_path: Path
) -> None:
    handle = await _start(client, queue, "ext_broken", tmp_path)
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), 60)
    # Not retried: the error reaches the workflow as the unit's would (rebuilt, a UserError fails the workflow).
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UserError"
    assert "no inbox is configured" in str(cause)
    assert len(_lines(tmp_path, "asked")) == 1


async def test_a_token_of_no_run_is_refused(client: Client) -> None:
    token = encode_token("temporal", {"workflow": new_id(), "run": str(uuid.uuid4()), "key": "1/x.1"})
    with pytest.raises(EventTokenError, match="No running workflow"):
        await resolve_external_event(token, APPROVE, client=client)


async def test_wait_for_external_event_in_an_inline_tool_gets_the_answer(
    client: Client, queue: str, tmp_path: Path
) -> None:
    handle = await _start(client, queue, "ext_human", tmp_path)
    token = await _token(tmp_path)
    assert await resolve_external_event(token, "yes", client=client) is True
    assert await asyncio.wait_for(handle.result(), 60) == "done: human said yes"
    assert _lines(tmp_path, "asked") == [token]


EXAMPLE = ROOT / "examples" / "temporal_approval.py"


async def test_the_approval_example_runs_and_the_docs_show_its_code(temporal_env: WorkflowEnvironment) -> None:
    example = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), cwd=ROOT, env=_env(temporal_env), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(example.communicate(), 120)
    assert example.returncode == 0
    assert out.decode().splitlines() == ["approval delivered: True", '{"refund":"refunded order a"}']
    # The docs page includes the example itself (pymdownx.snippets), so it shows the code that ran here.
    page = (ROOT / "docs" / "temporal.md").read_text()
    section = page.partition("## Waiting for a person")[2].partition("\n## ")[0]
    assert "```python\n--8<--\nexamples/temporal_approval.py\n--8<--\n```" in section
