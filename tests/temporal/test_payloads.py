"""Unit payloads are stored as JSON that the Temporal UI and CLI show as it is, through the user's payload codec."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import uuid
from collections.abc import Sequence
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.common import RawValue
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter, DefaultPayloadConverter, PayloadCodec, PayloadConverter
from temporalio.worker import Worker

from durable_agents.exceptions import ProtocolError
from durable_agents.temporal import DurableAgentsPlugin
from durable_agents.temporal._payloads import frame_of, payload_of

from . import workflows as w
from .conftest import TEMPORAL_BIN, new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]

TOOL_UNIT = "loop.toolset.agent.call"


def _unit_payloads(events: Sequence[HistoryEvent]) -> list[tuple[str, str, Payload]]:
    """(unit name, 'input' or 'result', payload) of every activity of the run."""
    types: dict[int, str] = {}
    found: list[tuple[str, str, Payload]] = []
    for event in events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            types[event.event_id] = attributes.activity_type.name
            found.extend((attributes.activity_type.name, "input", p) for p in attributes.input.payloads)
        elif event.HasField("activity_task_completed_event_attributes"):
            completed = event.activity_task_completed_event_attributes
            found.extend((types[completed.scheduled_event_id], "result", p) for p in completed.result.payloads)
    return found


async def test_every_unit_payload_is_json_with_readable_tool_calls(client: Client, task_queue: str) -> None:
    handle = await client.start_workflow(w.LoopWorkflow.run, "go", id=new_id(), task_queue=task_queue)
    assert await handle.result() == "done: r0, r1, r2, r3"
    payloads = _unit_payloads((await handle.fetch_history()).events)
    assert len(payloads) == 2 * (2 * w.ROUNDS + 1)  # K+1 model requests and K tool calls, each an input and a result
    for name, direction, payload in payloads:
        assert payload.metadata["encoding"] == b"json/plain", (name, direction)
        json.loads(payload.data)
    tool_inputs = [json.loads(p.data) for name, d, p in payloads if name == TOOL_UNIT and d == "input"]
    tool_results = [json.loads(p.data) for name, d, p in payloads if name == TOOL_UNIT and d == "result"]
    assert [(i["tool"], i["args"]) for i in tool_inputs] == [("step", {"i": i}) for i in range(w.ROUNDS)]
    assert [r["value"] for r in tool_results] == [f"r{i}" for i in range(w.ROUNDS)]


async def _cli_show(client: Client, workflow_id: str, *options: str) -> str:
    process = await asyncio.create_subprocess_exec(
        TEMPORAL_BIN,
        "workflow",
        "show",
        "--workflow-id",
        workflow_id,
        "--address",
        client.service_client.config.target_host,
        *options,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return out.decode()


async def test_the_cli_shows_unit_payloads_as_json(client: Client, task_queue: str) -> None:
    handle = await client.start_workflow(w.LoopWorkflow.run, "go", id=new_id(), task_queue=task_queue)
    await handle.result()
    # `--detailed` decodes JSON payloads field by field (a binary payload stays one opaque value).
    lines = (await _cli_show(client, handle.id, "--detailed")).splitlines()
    assert [line for line in lines if line.startswith(("input[0].tool:", "input[0].args.", "result[0].value:"))] == [
        line
        for i in range(w.ROUNDS)
        for line in (f"input[0].args.i: {i}", "input[0].tool: step", f"result[0].value: r{i}")
    ]
    # `--output json` is the replayable history: payloads stay base64 there, with their JSON encoding.
    shown = json.loads(await _cli_show(client, handle.id, "--output", "json"))["events"]
    inputs = [
        e["activityTaskScheduledEventAttributes"]["input"]["payloads"][0]
        for e in shown
        if "activityTaskScheduledEventAttributes" in e
    ]
    assert {base64.b64decode(p["metadata"]["encoding"]) for p in inputs} == {b"json/plain"}
    assert all(json.loads(base64.b64decode(p["data"])) for p in inputs)


@workflow.defn(sandboxed=False)  # defined in a test module, which the sandbox should not re-import
class OldStyleCallWorkflow:
    """Schedules a tool unit as versions before December 2026 did: a `bytes` input, stored as `binary/plain`."""

    @workflow.run
    async def run(self, frame: bytes) -> bytes:
        result = await workflow.execute_activity(
            TOOL_UNIT, frame, result_type=RawValue, start_to_close_timeout=timedelta(seconds=30)
        )
        return frame_of(result)


async def test_an_activity_scheduled_with_a_binary_input_runs(client: Client) -> None:
    # A run in flight across the upgrade: the old workflow code scheduled the activity, a new worker runs it.
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[OldStyleCallWorkflow], plugins=[DurableAgentsPlugin(w.loop_agent)]
    ):
        frame = b'{"t":"call","v":1,"tool":"step","args":{"i":7}}'
        handle = await client.start_workflow(OldStyleCallWorkflow.run, frame, id=new_id(), task_queue=queue)
        assert json.loads(await handle.result())["value"] == "r7"
    (scheduled,) = [
        e for e in (await handle.fetch_history()).events if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled.activity_task_scheduled_event_attributes.input.payloads[0].metadata["encoding"] == b"binary/plain"


class Base64Codec(PayloadCodec):
    """Stores every payload as base64 of its serialized form, under its own encoding (a stand-in for encryption)."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(metadata={"encoding": b"test/base64"}, data=base64.b64encode(p.SerializeToString()))
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload.FromString(base64.b64decode(p.data)) for p in payloads]


async def test_a_payload_codec_encodes_unit_payloads(client: Client) -> None:
    config = client.config()
    config["data_converter"] = dataclasses.replace(config["data_converter"], payload_codec=Base64Codec())
    coded = Client(**config)
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(coded, task_queue=queue, workflows=[w.LoopWorkflow], plugins=[DurableAgentsPlugin(w.loop_agent)]):
        handle = await coded.start_workflow(w.LoopWorkflow.run, "go", id=new_id(), task_queue=queue)
        assert await handle.result() == "done: r0, r1, r2, r3"
    payloads = _unit_payloads((await client.get_workflow_handle(handle.id).fetch_history()).events)
    assert payloads and all(p.metadata["encoding"] == b"test/base64" for _, _, p in payloads)
    # Undone by the codec (as a codec server does for the UI), each is the frame as JSON.
    decoded = await Base64Codec().decode([p for _, _, p in payloads])
    assert all(p.metadata["encoding"] == b"json/plain" and json.loads(p.data) for p in decoded)


@pytest.mark.parametrize("payload_converter", [DefaultPayloadConverter, PydanticPayloadConverter])
async def test_frames_are_read_under_both_encodings(payload_converter: type[PayloadConverter]) -> None:
    # A history written before December 2026 stores frames as `binary/plain` (activities typed `bytes`).
    data_converter = DataConverter(payload_converter_class=payload_converter)
    frame = b'{"t":"done","v":1}'
    old = await data_converter.encode_wrapper([frame])
    new = await data_converter.encode_wrapper([payload_of(frame)])
    assert old.payloads[0].metadata["encoding"] == b"binary/plain"
    assert new.payloads[0].metadata["encoding"] == b"json/plain"
    for payloads in (old, new):
        (value,) = await data_converter.decode_wrapper(payloads, [RawValue])
        assert frame_of(value) == frame
    with pytest.raises(ProtocolError, match="test/base64"):
        frame_of(RawValue(Payload(metadata={"encoding": b"test/base64"}, data=frame)))
