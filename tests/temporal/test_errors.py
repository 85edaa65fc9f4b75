"""Bad input inside a workflow: a typed error that fails the workflow at once, never an endless retry."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from durable_agents.exceptions import ContainerUsageError
from durable_agents.temporal import TemporalAgent, history_stats

from . import workflows as w
from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]


async def _failure(client: Client, task_queue: str, kind: str) -> tuple[ApplicationError, list[str]]:
    start = time.monotonic()
    handle = await client.start_workflow(
        w.MisuseWorkflow.run,
        kind,
        id=new_id(),
        task_queue=task_queue,
        # An endlessly retried workflow task would time out here instead of failing with the typed error.
        execution_timeout=timedelta(seconds=30),
    )
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    # 5 s on an idle machine is the target; a busy CI box gets twice that (a retried task never fails at all).
    assert time.monotonic() - start < 10.0, f"{kind} failed after {time.monotonic() - start:.1f} s"
    return cause, (await history_stats(handle)).activity_types


@pytest.mark.parametrize(
    ("kind", "error_type", "hint"),
    [
        ("unregistered_model", "UnregisteredModelError", "models={'name': model}"),
        ("unserializable_deps", "UnserializableDepsError", "deps_type"),
        ("run_handler", "UnsupportedCapabilityError", "event_stream_handler="),
        ("prompt_surrogate", "InvalidRunInputError", "The prompt of a run of agent 'loop' cannot be serialized"),
        ("history_strings", "InvalidRunInputError", "message_history[0] of a run of agent 'loop' is a str"),
        ("history_foreign_part", "InvalidRunInputError", "ForeignPart"),
    ],
)
async def test_misuse_fails_the_workflow_before_any_activity(
    client: Client, task_queue: str, kind: str, error_type: str, hint: str
) -> None:
    error, activities = await _failure(client, task_queue, kind)
    assert error.type == error_type
    assert hint in error.message and "Fix" in error.message
    assert activities == []


async def test_tool_result_over_the_payload_limit_fails_with_tool_name_and_size(
    client: Client, task_queue: str
) -> None:
    error, activities = await _failure(client, task_queue, "big_result")
    assert error.type == "PayloadTooLargeError"
    assert "'step'" in error.message
    assert "3,000,0" in error.message  # the JSON string in its outcome frame
    assert "2,000,000" in error.message
    # The tool activity ran once and reported the error as a value: no retry.
    assert activities == ["big.model", "big.toolset.agent.call"]


async def test_run_in_container_outside_a_workflow_is_a_container_usage_error() -> None:
    # It used to fail inside temporalio (`workflow.info()` outside a workflow), with a private error type.
    temporal_agent = TemporalAgent(Agent(TestModel(), name="outside_workflow"))
    with pytest.raises(ContainerUsageError, match=r"outside a container of the temporal engine.*Fix: call `run\(\)`"):
        await temporal_agent.run_in_container("go")
