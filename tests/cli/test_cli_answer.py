"""`durable-agents runs answer/approve/deny TOKEN`: the token names the engine, so bad tokens fail early."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest
from pydantic_ai import RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.tools import DeferredToolRequests

from durable_agents._external import encode_token
from durable_agents.exceptions import EventTokenError
from tests.core.test_approvals import delete_agent

from ._support import cli


async def test_a_token_that_is_not_ours_is_refused_with_the_fix() -> None:
    with pytest.raises(EventTokenError, match="unchanged"):
        await cli("runs", "approve", "abc", "--call", "c1")


async def test_a_payload_that_is_not_json_is_refused_before_anything_is_sent() -> None:
    token = encode_token("local", {"run": "r", "key": "k"})
    with pytest.raises(EventTokenError, match="not JSON"):
        await cli("runs", "answer", token, "{approvals")


async def test_a_local_token_of_an_ended_process_is_refused_with_the_fix() -> None:
    with socket.socket() as s:  # a port nobody listens on: the run's process has exited
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = encode_token("local", {"run": "r", "key": "k", "pid": "0", "port": str(port)})
    with pytest.raises(EventTokenError, match="local runs are not durable"):
        await cli("runs", "deny", token, "--reason", "no")
    # A token without a process names a wait of this one, which has none.
    with pytest.raises(EventTokenError, match="No local run"):
        await cli("runs", "deny", encode_token("local", {"run": "r", "key": "k"}), "--reason", "no")


async def test_the_console_script_approves_a_local_run_waiting_in_this_process() -> None:
    asked: list[tuple[str, DeferredToolRequests]] = []

    async def ask(ctx: RunContext[None], requests: DeferredToolRequests, token: str) -> None:
        asked.append((token, requests))

    wrapper, ran = delete_agent("cli_local_wait", capabilities=[RequestInput(ask)])
    run = asyncio.create_task(wrapper.run("go"))
    while not asked:
        await asyncio.sleep(0.01)
    token, requests = asked[0]
    [call] = requests.approvals
    script = Path(sys.executable).parent / "durable-agents"
    proc = await asyncio.create_subprocess_exec(
        str(script), "runs", "approve", token, "--call", call.tool_call_id,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "Delivered: the run goes on."
    assert "deleted a" in (await asyncio.wait_for(run, 30)).output and ran == ["a"]
