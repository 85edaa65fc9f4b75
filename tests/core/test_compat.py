"""The wire format is versioned: payloads of every released format decode, and unknown ones fail typed, once."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import BinaryContent, ModelRequest, ToolReturn

from durable_agents._errors import rebuild_error
from durable_agents._frames import (
    PROTOCOL_VERSION,
    ApprovalOutcome,
    DeferredOutcome,
    DoneOutcome,
    ErrorOutcome,
    EventsInput,
    FailedOutcome,
    ListInput,
    MissOutcome,
    ModelInput,
    ResponseOutcome,
    RetryOutcome,
    ReturnOutcome,
    ToolInput,
    ToolsOutcome,
    decode_input,
    decode_outcome,
    encode,
)
from durable_agents._history import HistoryCache
from durable_agents.exceptions import ProtocolError
from durable_agents.local import LocalAgent
from durable_agents.testing import tool_loop_model

V0 = Path(__file__).parents[1] / "compat" / "v0" / "payloads.json"


def _records() -> list[dict[str, Any]]:
    return json.loads(V0.read_text())["records"]


def _b(text: str) -> bytes:
    return base64.b64decode(text)


def test_the_fixture_covers_every_unit_kind_and_outcome() -> None:
    kinds = {r["kind"] for r in _records()}
    assert kinds == {"model", "call", "list", "events"}
    outcomes = {type(decode_outcome(_b(r["output"]))) for r in _records()}
    assert outcomes >= {
        ResponseOutcome,
        MissOutcome,
        ReturnOutcome,
        RetryOutcome,
        FailedOutcome,
        DeferredOutcome,
        ApprovalOutcome,
        ToolsOutcome,
        DoneOutcome,
        ErrorOutcome,
    }


@pytest.mark.parametrize("index", range(len(_records())))
def test_every_v0_payload_decodes_into_the_current_types(index: int) -> None:
    record = _records()[index]
    unit_input = decode_input(_b(record["input"]))
    outcome = decode_outcome(_b(record["output"]))
    expected = {"model": ModelInput, "call": ToolInput, "list": ListInput, "events": EventsInput}[record["kind"]]
    assert isinstance(unit_input, expected)
    assert unit_input.v == 0
    assert outcome.v == 0
    # What decodes also re-encodes in the current format and decodes to the same value.
    assert decode_input(encode(unit_input)) == unit_input
    assert decode_outcome(encode(outcome)) == outcome


def test_v0_contents_are_read_faithfully() -> None:
    records = _records()
    by_label: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_label.setdefault(r["label"], []).append(r)

    first_model = decode_input(_b(by_label["v0loop.model"][0]["input"]))
    assert isinstance(first_model, ModelInput)
    assert first_model.base == 0 and first_model.params is not None and first_model.params_digest
    assert isinstance(first_model.messages[0], ModelRequest)
    assert first_model.ctx is not None and first_model.deps == {"user": "ann", "n": 3}

    later = decode_input(_b(by_label["v0loop.model"][1]["input"]))
    assert isinstance(later, ModelInput) and later.base > 0 and later.params is None

    call = decode_input(_b(by_label["v0loop.toolset.agent.call/step"][0]["input"]))
    assert isinstance(call, ToolInput) and call.args == {"i": 0} and call.deps == {"user": "ann", "n": 3}

    ret = decode_outcome(_b(by_label["v0tools.toolset.kit.call/multi"][0]["output"]))
    assert isinstance(ret, ReturnOutcome) and isinstance(ret.tool_return, ToolReturn)
    content = decode_outcome(_b(by_label["v0tools.toolset.kit.call/content"][0]["output"]))
    assert isinstance(content, ReturnOutcome) and content.content is not None
    assert isinstance(content.content[0], BinaryContent) and content.content[0].data == b"\x89PNG"

    error = decode_outcome(_b(by_label["v0fatal.toolset.kit.call/fatal"][0]["output"]))
    assert isinstance(error, ErrorOutcome)
    rebuilt = rebuild_error("unit", error)
    assert type(rebuilt) is UserError and str(rebuilt) == "bad setup"

    assert isinstance(decode_outcome(_b(by_label["v0tools.toolset.kit.call/retry"][0]["output"])), RetryOutcome)
    deferred = decode_outcome(_b(by_label["v0tools.toolset.kit.call/deferred"][0]["output"]))
    assert isinstance(deferred, DeferredOutcome) and deferred.metadata == {"why": "later"}


async def test_v0_model_inputs_of_a_whole_run_rebuild_its_history() -> None:
    # An upgrade while a run is in flight: the new code reads the old run's recorded model units.
    records = [r for r in _records() if r["agent"] == "v0loop" and r["kind"] == "model"]
    exchanges = [(decode_input(_b(r["input"])), decode_outcome(_b(r["output"]))) for r in records]
    last_input = exchanges[-1][0]
    assert isinstance(last_input, ModelInput)
    cache = HistoryCache()
    resolved = cache.resolve(
        last_input.run,
        last_input.base,
        last_input.digest,
        last_input.messages,
        params_digest=last_input.params_digest,
        params=last_input.params,
        records=exchanges[:-1],
    )
    assert cache.runs == 1 and cache.recoveries == 1
    assert resolved is not None
    messages, params = resolved
    assert params is not None
    assert len(messages) == last_input.base + len(last_input.messages)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"t":"model","v":99,"run":"r","base":0,"digest":""}',
        b'{"v":2,"kind":"something new"}',
        b"not a frame",
        b'{"t":"call","v":1}',
    ],
)
def test_unreadable_payloads_raise_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_input(payload)
    if b'"v":99' in payload:
        assert "version 99" in str(info.value) and "reads versions 0, 1" in str(info.value)


async def test_a_unit_that_gets_an_unreadable_payload_fails_the_run_once_without_retrying() -> None:
    calls: list[int] = []
    agent = Agent(tool_loop_model(1), name="newer")

    @agent.tool_plain
    def step(i: int) -> str:
        calls.append(i)
        return "r"

    durable = LocalAgent(agent, unit_config={"max_attempts": 5})
    tool_unit = next(u for u in durable.units if u.kind.value == "call")
    newer = b'{"t":"call","v":99,"tool":"step","args":{"i":0}}'
    out = decode_outcome(await tool_unit.body(newer))
    assert isinstance(out, ErrorOutcome) and out.error == "ProtocolError"
    assert calls == []


def test_current_frames_carry_the_current_version() -> None:
    data = encode(ToolInput(tool="t", args={"a": 1}))
    assert data.startswith(b'{"t":"call","v":')
    assert json.loads(data)["v"] == PROTOCOL_VERSION


V1 = Path(__file__).parents[1] / "compat" / "v1" / "payloads.json"


def test_every_v1_payload_decodes() -> None:
    records = json.loads(V1.read_text())["records"]
    assert {r["kind"] for r in records} == {"model", "call", "list", "events"}
    for record in records:
        unit_input = decode_input(_b(record["input"]))
        outcome = decode_outcome(_b(record["output"]))
        assert unit_input.v == 1 and outcome.v == 1
        assert decode_input(encode(unit_input)) == unit_input
