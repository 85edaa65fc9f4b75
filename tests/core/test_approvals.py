"""Approvals bound to the call's arguments (`durable_agents.approve`), and waits refused inside units, locally."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.external_events import wait_for_external_event
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.test import TestModel
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolApproved

from durable_agents import approve, resolve_external_event
from durable_agents._approvals import APPROVAL_DIGEST_KEY, call_digest
from durable_agents.exceptions import ApprovalMismatchError, WaitInUnitError
from durable_agents.local import LocalAgent


def delete_agent(name: str, **agent_kwargs: Any) -> tuple[LocalAgent[None, Any], list[str]]:
    """A local agent whose tool `delete(path)` requires approval; `ran` lists the paths it deleted."""
    agent = Agent(TestModel(), name=name, **agent_kwargs)
    ran: list[str] = []

    @agent.tool_plain(requires_approval=True)
    def delete(path: str) -> str:
        ran.append(path)
        return f"deleted {path}"

    return LocalAgent(agent), ran


def asking_agent(name: str) -> tuple[Agent[None, str], list[str], list[str]]:
    """An agent whose tool `ask_human` waits for a person's answer: the agent, the tokens and the tool's calls."""
    agent = Agent(TestModel(), name=name)
    tokens: list[str] = []
    calls: list[str] = []

    @agent.tool_plain
    async def ask_human(question: str) -> str:
        calls.append(question)
        answer = await wait_for_external_event("human", ask=tokens.append)
        return f"human said {answer}"

    return agent, tokens, calls


def _deferred_agent(name: str) -> tuple[LocalAgent[None, Any], list[str]]:
    return delete_agent(name, output_type=[str, DeferredToolRequests])


def tamper(messages: list[ModelMessage], **args: object) -> list[ModelMessage]:
    """The history with the arguments of its last tool call replaced."""
    *head, last = messages
    assert isinstance(last, ModelResponse)
    parts = [dataclasses.replace(p, args=dict(args)) if isinstance(p, ToolCallPart) else p for p in last.parts]
    return [*head, dataclasses.replace(last, parts=parts)]


def test_approve_binds_each_call_to_a_digest_of_its_tool_and_arguments() -> None:
    call = ToolCallPart("delete", {"path": "a", "force": True}, tool_call_id="c1")
    same = ToolCallPart("delete", '{"force": true, "path": "a"}', tool_call_id="c2")
    results = approve(DeferredToolRequests(approvals=[call]))
    assert results.approvals == {"c1": True}
    assert results.metadata == {"c1": {APPROVAL_DIGEST_KEY: call_digest(call)}}
    assert call_digest(call) == call_digest(same)  # canonical JSON: key order and JSON text do not matter
    assert call_digest(call) != call_digest(dataclasses.replace(call, args={"path": "b", "force": True}))
    assert call_digest(call) != call_digest(dataclasses.replace(call, tool_name="remove"))
    assert approve([call, same], {"c2": False}).approvals == {"c1": True, "c2": False}
    with pytest.raises(ValueError, match="not among"):
        approve(call, {"other": True})


async def test_a_deferred_approval_is_refused_when_the_history_changed_the_arguments() -> None:
    wrapper, ran = _deferred_agent("approve_deferred_tampered")
    first = await wrapper.run("go")
    requests = first.output
    assert isinstance(requests, DeferredToolRequests)
    results = approve(requests)

    with pytest.raises(ApprovalMismatchError, match="other arguments"):
        await wrapper.run(message_history=tamper(first.all_messages(), path="b"), deferred_tool_results=results)
    assert ran == []

    done = await wrapper.run(message_history=first.all_messages(), deferred_tool_results=results)
    assert ran == ["a"] and "deleted a" in str(done.output)


async def test_an_approval_that_overrides_the_arguments_runs_the_tool_with_the_override() -> None:
    wrapper, ran = _deferred_agent("approve_override")
    first = await wrapper.run("go")
    assert isinstance(first.output, DeferredToolRequests)
    (call,) = first.output.approvals
    decision = approve(first.output, {call.tool_call_id: ToolApproved(override_args={"path": "b"})})
    await wrapper.run(message_history=first.all_messages(), deferred_tool_results=decision)
    assert ran == ["b"]  # as in a bare run: the approver's arguments, not the model's


async def test_an_unbound_approval_keeps_working_as_before() -> None:
    wrapper, ran = _deferred_agent("approve_deferred_unbound")
    first = await wrapper.run("go")
    assert isinstance(first.output, DeferredToolRequests)
    results = DeferredToolResults(approvals={call.tool_call_id: True for call in first.output.approvals})
    await wrapper.run(message_history=tamper(first.all_messages(), path="b"), deferred_tool_results=results)
    assert ran == ["b"]


async def test_an_in_run_approval_for_other_arguments_is_refused() -> None:
    asked: list[DeferredToolRequests] = []
    tokens: list[str] = []

    async def ask(ctx: RunContext[None], requests: DeferredToolRequests, token: str) -> None:
        asked.append(requests)
        tokens.append(token)

    wrapper, ran = delete_agent("approve_in_run", capabilities=[RequestInput(ask)])
    run = asyncio.create_task(wrapper.run("go"))
    while not tokens:
        await asyncio.sleep(0.005)
    (call,) = asked[0].approvals
    # A decision taken on another version of the call (here: another path) is sent for this call's id.
    assert await resolve_external_event(tokens[0], approve(dataclasses.replace(call, args={"path": "etc"})))
    with pytest.raises(ApprovalMismatchError):
        await run
    assert ran == []


async def test_a_wait_inside_a_tool_unit_fails_the_run_with_the_fix_and_is_not_retried() -> None:
    agent, _, calls = asking_agent("wait_in_unit")
    wrapper = LocalAgent(agent, unit_config={"max_attempts": 3})
    with pytest.raises(WaitInUnitError, match="inline") as error:
        await asyncio.wait_for(wrapper.run("go"), 10)
    assert "RequestInput" in str(error.value) and "ask_human" in str(error.value)
    assert len(calls) == 1
