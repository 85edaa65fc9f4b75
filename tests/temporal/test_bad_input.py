"""Bad input on Temporal: a typed error that fails the workflow within 5 s, never a retried task or activity loop.

Each case counts what it paid for: a deterministic failure never runs a tool or a model request twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin, history_stats

from . import loop_workflows as lw
from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]

BOUND = 10.0
"""Seconds from starting the workflow to its failure. The issue's bound is 5 s on an idle machine (measured
1.5-3.7 s on a loaded one); the suite runs on a busy 2-core CI box, so it allows twice that, still far below a
retried workflow task, which never fails at all."""


@pytest.fixture
async def queue(client: Client) -> AsyncIterator[str]:
    """A worker set up as documented: the plugin only, for a workflow module with a module-level `MCPToolset`."""
    name = f"tq-{uuid.uuid4().hex[:8]}"
    lw.CALLS.clear()
    lw.PLAIN_TOOLS.clear()
    async with Worker(
        client, task_queue=name, workflows=[lw.BadInputWorkflow], plugins=[DurableAgentsPlugin(*lw.ALL_AGENTS)]
    ):
        yield name


async def _failure(client: Client, queue: str, kind: str) -> tuple[ApplicationError, list[str]]:
    start = time.monotonic()
    handle = await client.start_workflow(
        lw.BadInputWorkflow.run, kind, id=new_id(), task_queue=queue, execution_timeout=timedelta(seconds=30)
    )
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    elapsed = time.monotonic() - start
    cause = info.value.cause
    # An activity failure wraps the error; the typed error fails the workflow itself.
    assert isinstance(cause, ApplicationError), repr(cause)
    assert elapsed < BOUND, f"{kind} failed after {elapsed:.1f} s"
    return cause, (await history_stats(handle)).activity_types


@pytest.mark.parametrize(
    ("kind", "what"),
    [("lock", "_thread.lock"), ("opaque", "Opaque"), ("surrogate", "surrogates not allowed")],
)
async def test_an_unserializable_tool_result_fails_the_run_and_the_tool_ran_once(
    client: Client, queue: str, kind: str, what: str
) -> None:
    error, activities = await _failure(client, queue, kind)
    assert error.type == "SerializationError"
    assert f"The result of tool {kind!r}" in error.message and what in error.message
    assert "Fix: return plain values" in error.message
    assert lw.CALLS[kind] == 1 and lw.CALLS[f"model:{kind}"] == 1
    assert activities == [f"bad_{kind}.model", f"bad_{kind}.toolset.agent.call"]


async def test_a_huge_history_is_refused_before_the_deadlock_detector_fires(client: Client, queue: str) -> None:
    error, activities = await _failure(client, queue, "big_history")
    assert error.type == "PayloadTooLargeError"
    assert "The message_history of a run of agent 'bad_plain' (24,000 messages) is at least" in error.message
    assert "Fix: pass a shorter history" in error.message
    assert activities == []


@pytest.mark.parametrize(("kind", "refused"), [("sleepy", "time.sleep"), ("reader", "open")])
async def test_an_inline_tool_the_sandbox_refuses_fails_the_run_saying_why(
    client: Client, queue: str, kind: str, refused: str
) -> None:
    error, activities = await _failure(client, queue, kind)
    assert error.type == "ConfigurationError"
    assert f"Tool {kind!r} of agent 'bad_{kind}' opted out of running as an activity" in error.message
    assert refused in error.message and "Fix: let the tool run as an activity" in error.message
    # The tool runs in the sandbox's copy of the module, where the count cannot be seen; the first workflow task
    # that ran it failed the workflow, and the model was asked once.
    assert activities == [f"bad_{kind}.model"]
    assert lw.CALLS[f"model:{kind}"] == 1


async def test_a_raising_event_handler_fails_the_run_without_paying_the_model_again(client: Client, queue: str) -> None:
    error, activities = await _failure(client, queue, "handler")
    assert error.type == "EventHandlerError"
    assert "The event_stream_handler of agent 'bad_handler' raised ValueError: the handler broke" in error.message
    assert "Fix: catch" in error.message
    assert activities == ["bad_handler.model"]
    assert lw.CALLS["model:handler"] == 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("mcp_missing", "cannot be started: `/nonexistent/mcp-server-binary` failed with FileNotFoundError"),
        ("mcp_garbage", "started but did not complete the MCP handshake"),
    ],
)
async def test_a_broken_mcp_server_fails_the_listing_once(client: Client, queue: str, kind: str, message: str) -> None:
    error, activities = await _failure(client, queue, kind)
    assert error.type == "ConfigurationError"
    assert f"The MCP server of toolset {kind!r}" in error.message and message in error.message
    assert "Fix: install the server" in error.message
    assert activities == [f"bad_{kind}.toolset.{kind}.list"]


async def test_an_mcp_server_that_writes_garbage_then_answers_is_listed(client: Client, queue: str) -> None:
    start = time.monotonic()
    output = await client.execute_workflow(
        lw.BadInputWorkflow.run, "mcp_alive", id=new_id(), task_queue=queue, execution_timeout=timedelta(seconds=30)
    )
    assert output == "ok"
    assert time.monotonic() - start < BOUND
    assert lw.PLAIN_TOOLS == [["ping"]]
