"""`recorded_exchanges` reads back, from the workflow history, exactly what a unit's activities took and returned.

The ground truth is what the activity functions really received and returned, recorded by a worker interceptor in
this process. A tool of the test agent calls `recorded_exchanges` from inside its own activity while the workflow
runs; after the run, an `ActivityEnvironment` calls it with the finished workflow's ids.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic_ai import Agent
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import PayloadCodec
from temporalio.testing import ActivityEnvironment
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from durable_agents.temporal import DurableAgentsPlugin, TemporalAgent
from durable_agents.temporal._history_source import recorded_exchanges
from durable_agents.temporal._payloads import frame_of
from durable_agents.testing import tool_loop_model

from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]

ROUNDS = 3
MODEL = "recall.model"
CALL = "recall.toolset.agent.call"

# Filled in this process by the worker below: what each activity really took and returned, and what each tool call
# read back (for the model unit and for its own unit).
EXECUTED: dict[str, list[tuple[bytes, bytes]]] = {}
RECALLED: list[tuple[Any, Any]] = []

recall_base = Agent(tool_loop_model(ROUNDS), name="recall")


@recall_base.tool_plain
async def step(i: int) -> str:
    RECALLED.append(
        (
            await recall_agent.recorded_exchanges(recall_agent.model_unit),
            await recorded_exchanges(activity.info().activity_type),
        )
    )
    return f"r{i}"


recall_agent = TemporalAgent(recall_base)


@workflow.defn(sandboxed=False)  # defined in a test module, which the sandbox should not re-import
class RecallWorkflow:
    @workflow.run
    async def run(self, prompt: str) -> str:
        return (await recall_agent.run(prompt)).output


class _RecordActivities(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Record(next)


class _Record(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await self.next.execute_activity(input)
        EXECUTED.setdefault(activity.info().activity_type, []).append((frame_of(input.args[0]), frame_of(result)))
        return result


class ReverseCodec(PayloadCodec):
    """Stores every payload reversed under its own encoding: unreadable unless this codec decodes it."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload(metadata={"encoding": b"test/reversed"}, data=p.SerializeToString()[::-1]) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload.FromString(p.data[::-1]) for p in payloads]


async def _run(client: Client) -> tuple[str, str]:
    EXECUTED.clear()
    RECALLED.clear()
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[RecallWorkflow],
        plugins=[DurableAgentsPlugin(recall_agent)],
        interceptors=[_RecordActivities()],
    ):
        handle = await client.start_workflow(RecallWorkflow.run, "go", id=new_id(), task_queue=queue)
        assert await handle.result() == "done: r0, r1, r2"
    assert handle.result_run_id is not None
    return handle.id, handle.result_run_id


async def _recall_after_the_run(client: Client, workflow_id: str, run_id: str, unit_name: str) -> Any:
    env = ActivityEnvironment(client)
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id, workflow_run_id=run_id)
    return await env.run(recorded_exchanges, unit_name)


def _check_recalled() -> None:
    models, calls = EXECUTED[MODEL], EXECUTED[CALL]
    assert len(models) == ROUNDS + 1
    assert len(calls) == len(RECALLED) == ROUNDS
    assert all(isinstance(b, bytes) for exchange in models + calls for b in exchange)
    for i, (model_seen, own_seen) in enumerate(RECALLED):
        # Tool call i runs after model request i completed, and before its own activity completed.
        assert model_seen == models[: i + 1]
        assert own_seen == [*calls[:i], (calls[i][0], None)]


async def test_exchanges_are_the_model_activities_inputs_and_results_in_order(client: Client) -> None:
    workflow_id, run_id = await _run(client)
    _check_recalled()
    assert await _recall_after_the_run(client, workflow_id, run_id, MODEL) == EXECUTED[MODEL]
    assert await _recall_after_the_run(client, workflow_id, run_id, "no.such.unit") == []


async def test_a_payload_codec_is_undone(client: Client) -> None:
    config = client.config()
    config["data_converter"] = dataclasses.replace(config["data_converter"], payload_codec=ReverseCodec())
    coded = Client(**config)
    workflow_id, run_id = await _run(coded)
    _check_recalled()
    # The server stores only reversed payloads; read back through the codec, they are the activities' own bytes.
    events = (await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()).events
    inputs = [
        e.activity_task_scheduled_event_attributes.input
        for e in events
        if e.activity_task_scheduled_event_attributes.activity_type.name == MODEL
    ]
    assert inputs and all(p.payloads[0].metadata["encoding"] == b"test/reversed" for p in inputs)
    assert await _recall_after_the_run(coded, workflow_id, run_id, MODEL) == EXECUTED[MODEL]
    assert await _recall_after_the_run(client, workflow_id, run_id, MODEL) is None  # no codec: cannot decode


async def test_none_when_it_cannot_read_the_history(client: Client) -> None:
    assert await recorded_exchanges(MODEL) is None  # not in an activity
    assert await ActivityEnvironment().run(recorded_exchanges, MODEL) is None  # no client
    assert await _recall_after_the_run(client, new_id(), str(uuid.uuid4()), MODEL) is None  # no such workflow
