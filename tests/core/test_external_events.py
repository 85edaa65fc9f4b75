"""Waits for external events (`RequestInput`, `wait_for_external_event`) on the local engine, and tokens."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from datetime import timedelta

import pytest
from pydantic_ai import RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults

from durable_agents import configure, fail_external_event, resolve_external_event
from durable_agents._external import _CONFIGURED_OPTIONS, decode_token, encode_token  # pyright: ignore[reportPrivateUsage]
from durable_agents.exceptions import ConfigurationError, EventTokenError
from durable_agents.local import LocalAgent
from tests.core.test_approvals import asking_agent, delete_agent


def _approval_agent(name: str, asked: list[tuple[str, DeferredToolRequests]], *, timeout: timedelta | None = None):
    async def ask(ctx: RunContext[None], requests: DeferredToolRequests, token: str) -> None:
        asked.append((token, requests))

    return delete_agent(name, capabilities=[RequestInput(ask, timeout=timeout)])


async def _token(asked: list[tuple[str, DeferredToolRequests]]) -> tuple[str, DeferredToolRequests]:
    while not asked:
        await asyncio.sleep(0.005)
    return asked[0]


async def test_a_local_run_waits_for_an_approval_and_goes_on_with_it(caplog: pytest.LogCaptureFixture) -> None:
    asked: list[tuple[str, DeferredToolRequests]] = []
    wrapper, ran = _approval_agent("ext_local_ok", asked)
    run = asyncio.create_task(wrapper.run("go"))
    token, requests = await _token(asked)
    assert not run.done() and ran == []
    approvals = {call.tool_call_id: True for call in requests.approvals}
    assert await resolve_external_event(token, DeferredToolResults(approvals=approvals)) is True
    with caplog.at_level(logging.WARNING, logger="durable_agents"):
        assert await resolve_external_event(token, DeferredToolResults(approvals=approvals)) is False
    assert "already had an answer" in caplog.text
    result = await run
    assert ran == ["a"] and "deleted a" in result.output
    assert len(asked) == 1


async def test_a_failed_wait_denies_the_calls_with_the_reason() -> None:
    asked: list[tuple[str, DeferredToolRequests]] = []
    wrapper, ran = _approval_agent("ext_local_fail", asked)
    run = asyncio.create_task(wrapper.run("go"))
    token, _ = await _token(asked)
    assert await fail_external_event(token, "nobody is on call") is True
    result = await run
    assert ran == []
    assert "nobody is on call" in str(result.all_messages())


async def test_a_timed_out_wait_ends_and_a_late_answer_is_ignored() -> None:
    asked: list[tuple[str, DeferredToolRequests]] = []
    wrapper, ran = _approval_agent("ext_local_timeout", asked, timeout=timedelta(milliseconds=50))
    result = await wrapper.run("go")
    assert ran == []
    assert "No answer arrived within" in str(result.all_messages())
    assert await resolve_external_event(asked[0][0], {"approvals": {}}) is False


async def test_wait_for_external_event_in_an_inline_tool_gets_the_answer() -> None:
    agent, tokens, _ = asking_agent("ext_local_tool")
    wrapper = LocalAgent(agent, tool_unit_configs={"ask_human": None})
    run = asyncio.create_task(wrapper.run("go"))
    while not tokens:
        await asyncio.sleep(0.005)
    await resolve_external_event(tokens[0], "yes")
    assert "human said yes" in (await run).output


# Another process: answers a token (`resolve` JSON / `fail` reason, repeated), prints each result or the error.
_ELSEWHERE = """
import asyncio, json, sys
from durable_agents import configure, fail_external_event, resolve_external_event
from durable_agents.exceptions import ConfigurationError, EventTokenError

async def main(token, *answers):
    for kind, value in zip(answers[::2], answers[1::2]):
        try:
            if kind == "resolve":
                print(await resolve_external_event(token, json.loads(value)))
            else:
                print(await fail_external_event(token, value))
        except EventTokenError as exc:
            print("EventTokenError:", exc.message)

asyncio.run(main(*sys.argv[1:]))
"""


async def _elsewhere(token: str, *answers: str) -> list[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _ELSEWHERE,
        token,
        *answers,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode().splitlines()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_another_process_answers_a_local_wait_once() -> None:
    asked: list[tuple[str, DeferredToolRequests]] = []
    wrapper, ran = _approval_agent("ext_local_elsewhere", asked)
    run = asyncio.create_task(wrapper.run("go"))
    token, requests = await _token(asked)
    approve = json.dumps({"approvals": {call.tool_call_id: True for call in requests.approvals}})
    deny = json.dumps({"approvals": {call.tool_call_id: False for call in requests.approvals}})
    assert await _elsewhere(token, "resolve", approve, "resolve", deny) == ["True", "False"]
    result = await asyncio.wait_for(run, 30)
    assert ran == ["a"] and "deleted a" in result.output
    assert len(asked) == 1
    # Once the run has ended, its process still knows the wait had an answer.
    assert await _elsewhere(token, "fail", "too late") == ["False"]


async def test_another_process_fails_a_local_wait_and_bad_addresses_are_refused() -> None:
    asked: list[tuple[str, DeferredToolRequests]] = []
    wrapper, ran = _approval_agent("ext_local_elsewhere_fail", asked)
    run = asyncio.create_task(wrapper.run("go"))
    token, _ = await _token(asked)
    engine, address = decode_token(token)
    assert engine == "local" and address["pid"] == str(os.getpid())
    # A wait this process never had: refused by this process's inbox, with the fix.
    unknown = encode_token("local", {**address, "key": "nobody.1"})
    [line] = await _elsewhere(unknown, "resolve", "1")
    assert line.startswith("EventTokenError: No local run") and "unchanged" in line
    assert await _elsewhere(token, "fail", "nobody is on call") == ["True"]
    result = await asyncio.wait_for(run, 30)
    assert ran == [] and "nobody is on call" in str(result.all_messages())
    # The process of the run is gone: local runs are not durable, and the error says what to do instead.
    gone = encode_token("local", {**address, "pid": "0", "port": str(_closed_port())})
    with pytest.raises(EventTokenError, match="local runs are not durable"):
        await resolve_external_event(gone, 1)


async def test_tokens_round_trip_and_bad_tokens_are_refused_with_the_fix() -> None:
    token = encode_token("dbos", {"workflow": "wf-1", "key": "approve.1"})
    assert decode_token(token) == ("dbos", {"workflow": "wf-1", "key": "approve.1"})
    with pytest.raises(EventTokenError, match="unchanged"):
        await resolve_external_event("not-a-token", 1)
    with pytest.raises(EventTokenError, match="damaged"):
        await resolve_external_event("da1.local.%%%", 1)
    with pytest.raises(EventTokenError, match="No local run"):
        await resolve_external_event(encode_token("local", {"run": "x", "key": "y"}), 1)
    with pytest.raises(EventTokenError, match="does not know"):
        await resolve_external_event(encode_token("nope", {"key": "y"}), 1)


def test_unanswerable_payloads_are_refused() -> None:
    with pytest.raises(EventTokenError, match="JSON"):
        asyncio.run(resolve_external_event(encode_token("local", {"run": "x", "key": "y"}), object()))


def test_event_options_of_configure_are_checked_and_cleared() -> None:
    with pytest.raises(ConfigurationError, match="names no engine of durable_agents: 'temporall'"):
        configure(event_options={"temporall": {"client": None}})
    with pytest.raises(ConfigurationError, match="must map option names to values"):
        configure(event_options={"temporal": 1})  # pyright: ignore[reportArgumentType]
    configure(event_options={"dbos": {"system_database_url": "sqlite:///x.sqlite"}})
    assert _CONFIGURED_OPTIONS == {"dbos": {"system_database_url": "sqlite:///x.sqlite"}}
    configure()
    assert _CONFIGURED_OPTIONS == {}
