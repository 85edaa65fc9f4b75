"""Cache keys: the projection is stable under timestamps and run ids, and distinct under real differences;
runs never share results by default, and share them only when they are the same but for volatile fields
under the opt-in `CROSS_RUN` policy."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace, UnionType
from typing import Annotated, Any, Union, cast, get_args, get_origin

import pytest
from _pf_support import counted_agent, lines
from prefect.context import TaskRunContext
from pydantic_ai import Agent, messages
from pydantic_ai.messages import (
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import FunctionModel

from durable_agents._codec import DepsCodec
from durable_agents._frames import EventsInput, ModelInput, ToolInput, encode
from durable_agents._history import MESSAGE_TA
from durable_agents._units import UnitKind
from durable_agents.prefect import CROSS_RUN, PrefectAgent, TaskConfig, unit_fingerprint
from durable_agents.prefect._cache import REVIEWED_FIELDS, RUN_SCOPED, RunScope
from durable_agents.testing import CallCounter, tool_loop_model

pytestmark = pytest.mark.prefect


def _ctx(run_id: str, **overrides: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "run_id": run_id,
        "conversation_id": run_id,
        "tool_call_id": f"call-{run_id}",
        "tool_name": "step",
        "run_step": 1,
        "retry": 0,
        "metadata": None,
    }
    ctx.update(overrides)
    return ctx


def _tool_payload(run_id: str, args: dict[str, Any], deps: Any = None, **ctx: Any) -> bytes:
    return encode(ToolInput(tool="step", args=args, model=None, ctx=_ctx(run_id, **ctx), deps=deps))


def _history(run_id: str, when: datetime, prompt: str = "go", call_id: str = "c1") -> list[bytes]:
    request = ModelRequest(parts=[UserPromptPart(prompt, timestamp=when)], timestamp=when, run_id=run_id)
    response = ModelResponse(
        parts=[ToolCallPart("step", {"i": 0}, tool_call_id=call_id)], timestamp=when, run_id=run_id
    )
    return [MESSAGE_TA.dump_json(request), MESSAGE_TA.dump_json(response)]


def _model_fp(run_id: str, history: list[bytes], deps: bytes = b"null", metadata: bytes = b"null") -> str:
    payload = encode(ModelInput(run=f"{run_id}:0", base=1, digest=run_id))
    return unit_fingerprint("a.model", UnitKind.MODEL, payload, 0, RunScope(history, deps, metadata))


T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)


def test_tool_fingerprint_ignores_run_ids_and_keeps_real_inputs() -> None:
    def fp(payload: bytes, occurrence: int = 0) -> str:
        return unit_fingerprint("a.toolset.agent.call/step", UnitKind.TOOL, payload, occurrence)

    base = fp(_tool_payload("run-1", {"i": 0}))
    assert fp(_tool_payload("run-2", {"i": 0})) == base
    # A resumed flow body computes a new deadline from `timeout=`: it must not make completed units run again.
    assert fp(_tool_payload("run-1", {"i": 0}, deadline="2026-01-01T00:00:00Z")) == base
    assert fp(_tool_payload("run-1", {"i": 1})) != base
    assert fp(_tool_payload("run-1", {"i": 0}, deps={"user": "bob"})) != base
    assert fp(_tool_payload("run-1", {"i": 0}, metadata={"tenant": "x"})) != base
    assert fp(_tool_payload("run-1", {"i": 0}, retry=1)) != base
    assert fp(_tool_payload("run-1", {"i": 0}), occurrence=1) != base
    # A tool argument that happens to be called `timestamp` is an input like any other.
    assert fp(_tool_payload("run-1", {"timestamp": 1})) != fp(_tool_payload("run-1", {"timestamp": 2}))


def test_model_fingerprint_ignores_timestamps_and_run_ids_and_keeps_the_conversation() -> None:
    base = _model_fp("run-1", _history("run-1", T1))
    assert _model_fp("run-2", _history("run-2", T2, call_id="other")) == base
    assert _model_fp("run-1", _history("run-1", T1, prompt="stop")) != base
    assert _model_fp("run-1", _history("run-1", T1)[:1]) != base
    assert _model_fp("run-1", _history("run-1", T1), deps=b'{"user":"bob"}') != base
    assert _model_fp("run-1", _history("run-1", T1), metadata=b'{"tenant":"x"}') != base


@dataclass
class Deps:
    user: str


async def test_runs_never_share_results_by_default(tmp_path: Path) -> None:
    prefect_agent = PrefectAgent(counted_agent(f"default_{uuid.uuid4().hex[:8]}", 2, tmp_path, deps_type=Deps))
    first = await prefect_agent.run("go", deps=Deps("ann"))
    second = await prefect_agent.run("go", deps=Deps("ann"))
    third = await prefect_agent.run("go", deps=Deps("bob"))
    assert first.output == second.output == "done: r0:Deps(user='ann'), r1:Deps(user='ann')"
    assert third.output == "done: r0:Deps(user='bob'), r1:Deps(user='bob')"
    assert len(lines(tmp_path / "model.log")) == 9
    assert lines(tmp_path / "tools.log") == ["0", "1"] * 3


async def test_cross_run_opt_in_shares_only_runs_equal_but_for_volatile_fields(tmp_path: Path) -> None:
    name = f"cross_{uuid.uuid4().hex[:8]}"
    prefect_agent = PrefectAgent(
        counted_agent(name, 2, tmp_path, deps_type=Deps), task_config=TaskConfig(cache_policy=CROSS_RUN)
    )
    first = await prefect_agent.run("go", deps=Deps("ann"))
    assert (len(lines(tmp_path / "model.log")), len(lines(tmp_path / "tools.log"))) == (3, 2)

    # A second run differs in flow run id, run id, conversation id and every timestamp: nothing runs again.
    again = await prefect_agent.run("go", deps=Deps("ann"))
    assert again.output == first.output
    assert (len(lines(tmp_path / "model.log")), len(lines(tmp_path / "tools.log"))) == (3, 2)

    # Different deps: everything runs again.
    other = await prefect_agent.run("go", deps=Deps("bob"))
    assert other.output != first.output
    assert (len(lines(tmp_path / "model.log")), len(lines(tmp_path / "tools.log"))) == (6, 4)

    # Different metadata: everything runs again too.
    tagged = await prefect_agent.run("go", deps=Deps("ann"), metadata={"tenant": "acme"})
    assert tagged.output == first.output
    assert (len(lines(tmp_path / "model.log")), len(lines(tmp_path / "tools.log"))) == (9, 6)

    # A different prompt is a different conversation.
    await prefect_agent.run("go on", deps=Deps("ann"))
    assert (len(lines(tmp_path / "model.log")), len(lines(tmp_path / "tools.log"))) == (12, 8)


def _pydantic_ai_classes(tp: Any) -> list[type[Any]]:
    if get_origin(tp) is Annotated:
        return _pydantic_ai_classes(get_args(tp)[0])
    if get_origin(tp) in (Union, UnionType):
        return [c for arg in get_args(tp) for c in _pydantic_ai_classes(arg)]
    return [tp] if isinstance(tp, type) and dataclasses.is_dataclass(tp) else []


def test_every_message_part_and_event_field_was_reviewed_for_the_projection() -> None:
    # A field pydantic-ai adds may be a timestamp or an id made up per execution (every resume would miss) or
    # content (leaving it out would collide): decide, then add it to REVIEWED_FIELDS or to a drop set.
    unions = (messages.ModelMessage, messages.ModelRequestPart, messages.ModelResponsePart, messages.AgentStreamEvent)
    found = {cls.__name__: {f.name for f in dataclasses.fields(cls)} for u in unions for cls in _pydantic_ai_classes(u)}
    assert {"ModelRequest", "ModelResponse", "ToolCallPart", "FunctionToolResultEvent"} <= found.keys()
    unreviewed = {name: fields - REVIEWED_FIELDS.get(name, frozenset()) for name, fields in found.items()}
    assert {name: sorted(f) for name, f in unreviewed.items() if f} == {}


def _events_fp(when: datetime, call_id: str, content: str = "r0") -> str:
    call = ToolCallPart("step", {"i": 0}, tool_call_id=call_id)
    result = ToolReturnPart("step", content, tool_call_id=call_id, timestamp=when)
    payload = encode(
        EventsInput(events=[FunctionToolCallEvent(call), FunctionToolResultEvent(result)], ctx=_ctx("run-1"), deps=None)
    )
    return unit_fingerprint("a.events", UnitKind.EVENTS, payload, 0)


def test_events_fingerprint_ignores_timestamps_and_call_ids_inside_events() -> None:
    base = _events_fp(T1, "c1")
    assert _events_fp(T2, "c2") == base
    assert _events_fp(T1, "c1", content="r1") != base


@dataclass
class SetDeps:
    tags: set[str]
    limits: dict[str, frozenset[int]]


def test_deps_with_sets_have_one_canonical_form_whatever_the_encoding_order() -> None:
    codec = DepsCodec(SetDeps)
    one = {"tags": ["b", "a", "c"], "limits": {"z": [3, 1], "a": []}}
    two = {"limits": {"a": [], "z": [1, 3]}, "tags": ["c", "a", "b"]}
    assert codec.canonical(one) == codec.canonical(two)
    assert codec.canonical(one) != codec.canonical({**one, "tags": ["a", "b"]})

    def fp(deps: Any) -> str:
        scope = RunScope(None, codec.canonical(deps))
        return unit_fingerprint(
            "a.toolset.agent.call/step", UnitKind.TOOL, _tool_payload("r", {"i": 0}, deps), 0, scope
        )

    assert fp(one) == fp(two)


def test_model_identity_is_part_of_the_key() -> None:
    history = _history("run-1", T1)
    payload = encode(ModelInput(run="run-1:0", base=1, digest="d"))

    def fp(model: str) -> str:
        return unit_fingerprint("a.model", UnitKind.MODEL, payload, 0, RunScope(history, b"null", b"null", model))

    assert fp("None|function:tool-loop-2") != fp("None|function:other")


def test_run_scoped_keys_differ_between_agent_runs_of_one_flow_run() -> None:
    flow_run_id = uuid.uuid4()
    ctx = cast(TaskRunContext, SimpleNamespace(task_run=SimpleNamespace(flow_run_id=flow_run_id)))

    def key(run: str) -> str | None:
        return RUN_SCOPED.compute_key(ctx, {"fingerprint": "f", "run": run}, {})

    assert key(f"{flow_run_id}:0") != key(f"{flow_run_id}:1")
    assert key(f"{flow_run_id}:0") == key(f"{flow_run_id}:0")


async def test_cross_run_with_another_model_misses(tmp_path: Path) -> None:
    name = f"cross_model_{uuid.uuid4().hex[:8]}"
    first = tool_loop_model(0, final="from A", counter=CallCounter(tmp_path / "a.log"))
    second = tool_loop_model(0, final="from B", counter=CallCounter(tmp_path / "b.log"))
    second = FunctionModel(second.function, stream_function=second.stream_function, model_name="other-model")
    prefect_agent = PrefectAgent(Agent(first, name=name), task_config=TaskConfig(cache_policy=CROSS_RUN))
    assert (await prefect_agent.run("go")).output == "from A"
    with prefect_agent.override(model=second):
        assert (await prefect_agent.run("go")).output == "from B"
    assert len(lines(tmp_path / "b.log")) == 1
    # The same model again hits.
    assert (await prefect_agent.run("go")).output == "from A"
    assert len(lines(tmp_path / "a.log")) == 1


async def test_a_response_reused_from_another_run_keeps_the_ids_of_the_run_that_produced_it(tmp_path: Path) -> None:
    # Re-stamped with the second run's ids, the answer would pass for that run's own (provider-side conversation
    # state, e.g. OpenAI's `openai_conversation_id='auto'`, would continue another conversation).
    name = f"cross_ids_{uuid.uuid4().hex[:8]}"
    prefect_agent = PrefectAgent(counted_agent(name, 1, tmp_path), model_task_config=TaskConfig(cache_policy=CROSS_RUN))
    first = await prefect_agent.run("go")
    second = await prefect_agent.run("go")
    assert len(lines(tmp_path / "model.log")) == 2  # the second run's model requests were all reused
    assert lines(tmp_path / "tools.log") == ["0", "0"]  # its tool calls were not (run-scoped)
    produced = [(m.run_id, m.conversation_id) for m in first.all_messages() if isinstance(m, ModelResponse)]
    reused = [(m.run_id, m.conversation_id) for m in second.all_messages() if isinstance(m, ModelResponse)]
    assert reused == produced
    assert all(run_id == first.run_id for run_id, _ in produced)
    requests = [m for m in second.all_messages() if isinstance(m, ModelRequest)]
    assert {m.run_id for m in requests} == {second.run_id} != {first.run_id}
