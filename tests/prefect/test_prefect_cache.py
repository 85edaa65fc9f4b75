"""Cache keys: the projection is stable under timestamps and run ids, and distinct under real differences;
runs never share results by default, and share them only when they are the same but for volatile fields
under the opt-in `CROSS_RUN` policy."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _pf_support import counted_agent, lines
from pydantic_ai.messages import ModelRequest, ModelResponse, ToolCallPart, UserPromptPart

from durable_agents._frames import ModelInput, ToolInput, encode
from durable_agents._history import MESSAGE_TA
from durable_agents._units import UnitKind
from durable_agents.prefect import CROSS_RUN, PrefectAgent, TaskConfig, unit_fingerprint
from durable_agents.prefect._cache import RunHistory, UnitOccurrences

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
    return unit_fingerprint("a.model", UnitKind.MODEL, payload, 0, RunHistory(history, deps, metadata))


T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)


def test_fingerprints_keep_no_message_of_a_run_once_the_run_is_done() -> None:
    # Every model request re-hashes the run's history, so digests are memoised, but for the run only: a
    # process-wide cache keyed by the encoded messages kept the last 4,096 of them alive after their runs ended.
    history = _history("run-mem", T1)
    payload = encode(ModelInput(run="run-mem:0", base=1, digest="d"))
    before = [sys.getrefcount(chunk) for chunk in history]
    occurrences = UnitOccurrences()
    first = occurrences.next("a.model", UnitKind.MODEL, payload, RunHistory(history, b"null"))
    again = occurrences.next("a.model", UnitKind.MODEL, payload, RunHistory(history, b"null"))
    assert first != again  # the second identical request is occurrence 1
    assert [sys.getrefcount(chunk) for chunk in history] != before  # held while the run lasts
    del occurrences
    assert [sys.getrefcount(chunk) for chunk in history] == before


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
