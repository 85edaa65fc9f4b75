"""The RunContext projection: every field decided on, carried fields arrive unchanged, bad values fail early."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import httpx
import pydantic_core
import pytest
from pydantic import AfterValidator, ValidationInfo
from pydantic_ai import Agent, RunContext
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.messages import (
    BinaryContent,
    BinaryImage,
    CachePoint,
    ImageUrl,
    ModelResponse,
    TextContent,
    TextPart,
    ToolCallPart,
)
from pydantic_ai.models.function import FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RunUsage, UsageLimits

from durable_agents._context import CARRIED, EXCLUDED, restore_ctx, snapshot_ctx
from durable_agents._frames import decode_input
from durable_agents.exceptions import SerializationError
from durable_agents.local import LocalAgent
from durable_agents.testing import record_units, tool_loop_model

# ------------------------------------------------------------------------------------------ the table


def _undecided(cls: type[Any]) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - CARRIED.keys() - EXCLUDED.keys()


def _stale(cls: type[Any]) -> set[str]:
    return (CARRIED.keys() | EXCLUDED.keys()) - {f.name for f in dataclasses.fields(cls)}


def test_every_run_context_field_is_carried_or_excluded() -> None:
    assert not CARRIED.keys() & EXCLUDED.keys()
    assert not _undecided(RunContext), (
        f"pydantic-ai's RunContext has field(s) {sorted(_undecided(RunContext))} that durable_agents/_context.py "
        "neither carries nor excludes: decide on each, in CARRIED (with a codec) or EXCLUDED (with the reason)."
    )
    assert not _stale(RunContext), (
        f"durable_agents/_context.py names field(s) {sorted(_stale(RunContext))} that RunContext no longer has."
    )


def test_the_table_check_catches_an_added_and_a_removed_field() -> None:
    @dataclasses.dataclass(kw_only=True)
    class Newer(RunContext[Any]):
        brand_new: int = 0

    older = dataclasses.make_dataclass("Older", [f.name for f in dataclasses.fields(RunContext) if f.name != "retry"])
    assert _undecided(Newer) == {"brand_new"}
    assert _stale(older) == {"retry"}


# ------------------------------------------------------------------------------------------ round trip


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return RunUsage() if field.name == "usage" else None


def populated_ctx(model: TestModel) -> RunContext[Any]:
    """A context whose every carried field holds something other than its default."""
    return RunContext(
        deps=None,
        model=model,
        usage=RunUsage(requests=2, tool_calls=1, input_tokens=10, output_tokens=3, details={"reasoning": 4}),
        _model_id="test",
        run_id="run-1",
        conversation_id="conv-1",
        run_step=3,
        tool_call_id="call_7",
        tool_name="step",
        retries={"step": 1, "pre_other": 2},
        retry=1,
        max_retries=4,
        tool_call_approved=True,
        tool_call_metadata={"approved_by": "ann", "scores": [1, 2.5, None, True]},
        partial_output=True,
        usage_limits=UsageLimits(request_limit=5, tool_calls_limit=3, cost_limit=Decimal("0.5")),
        deadline=datetime(2026, 12, 24, 18, 30, 5, 123456, tzinfo=UTC),
        prompt=[
            "describe",
            ImageUrl("https://example.com/cat.png"),
            BinaryImage(b"\x89PNG\x00\xff", media_type="image/png"),
            TextContent("caption", metadata={"source": "user"}),
            CachePoint(),
        ],
        metadata={"tenant": "acme", "nested": {"ids": [1, 2]}},
        model_settings={"temperature": 0.2, "max_tokens": 99, "openai_reasoning_effort": "low"},  # type: ignore[typeddict-unknown-key]
        validation_context={"unit": "cm"},
        trace_include_content=True,
        instrumentation_version=1,
        discovered_tool_names={"search", "fetch"},
        loaded_capability_ids={"web"},
        capability_active=True,
        _tool_name_path=("pre", {"inner": "outer"}),
    )


def _through_a_frame(snap: dict[str, Any]) -> dict[str, Any]:
    """What the unit side gets: the snapshot goes through JSON in the payload header."""
    return pydantic_core.from_json(pydantic_core.to_json(snap))


def test_every_carried_field_round_trips_unchanged() -> None:
    model = TestModel()
    ctx = populated_ctx(model)
    fields = {f.name: f for f in dataclasses.fields(RunContext)}
    unset = [name for name in CARRIED if getattr(ctx, name) == _default(fields[name])]
    assert unset == [], "populated_ctx must set every carried field to a non-default value"

    restored = restore_ctx(_through_a_frame(snapshot_ctx(ctx)), deps=None, model=model)

    for name in CARRIED:
        before, after = getattr(ctx, name), getattr(restored, name)
        assert after == before, name
        assert type(after) is type(before), name
    assert [type(p) for p in restored.prompt or []] == [type(p) for p in ctx.prompt or []]
    assert restored.deadline is not None and restored.deadline.tzinfo is UTC
    assert restored.model is model and restored.messages == []


def test_a_text_prompt_and_an_empty_context_round_trip() -> None:
    model = TestModel()
    ctx = RunContext(deps=None, model=model, usage=RunUsage(), prompt="go")
    restored = restore_ctx(_through_a_frame(snapshot_ctx(ctx)), deps=None, model=model)
    assert {n: getattr(restored, n) for n in CARRIED} == {n: getattr(ctx, n) for n in CARRIED}


def test_binary_content_arrives_narrowed_like_pydantic_ai_validates_it() -> None:
    # pydantic-ai's own validation turns image bytes into a BinaryImage; the data is the same.
    model = TestModel()
    ctx = RunContext(
        deps=None, model=model, usage=RunUsage(), prompt=[BinaryContent(b"\x89PNG", media_type="image/png")]
    )
    restored = restore_ctx(_through_a_frame(snapshot_ctx(ctx)), deps=None, model=model)
    assert restored.prompt == [BinaryImage(b"\x89PNG", media_type="image/png")]


def test_snapshots_of_the_v0_format_still_restore() -> None:
    records = json.loads((Path(__file__).parents[1] / "compat" / "v0" / "payloads.json").read_text())["records"]
    inputs = [decode_input(base64.b64decode(record["input"])) for record in records]
    snaps: list[dict[str, Any]] = [ctx for unit_input in inputs if (ctx := getattr(unit_input, "ctx", None))]
    assert snaps
    for snap in snaps:
        ctx = restore_ctx(snap, deps=None, model=TestModel())
        assert (ctx.run_id, ctx.tool_call_id, ctx.prompt) == (snap["run_id"], snap["tool_call_id"], snap["prompt"])
        assert ctx.usage.requests == snap["usage"]["requests"]
        assert ctx.usage_limits is None and ctx.validation_context is None  # not in v0: defaults


# ------------------------------------------------------------------------------------------ refused values


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("metadata", {"client": object()}, r"\['client'\] is a object, which is not JSON data"),
        ("metadata", {"when": datetime(2026, 1, 1, tzinfo=UTC)}, "would arrive as a string"),
        ("validation_context", ("cm", "kg"), "is a tuple, which would arrive as a list"),
        ("tool_call_metadata", {1: "x"}, "int key 1"),
        ("model_settings", {"timeout": httpx.Timeout(3.0)}, r"\['timeout'\] is a Timeout"),
        ("metadata", {"ratio": float("nan")}, "JSON cannot hold"),
    ],
)
def test_values_that_would_not_arrive_unchanged_are_refused(field: str, value: Any, why: str) -> None:
    ctx = dataclasses.replace(populated_ctx(TestModel()), **{field: value})
    with pytest.raises(SerializationError, match=f"`{field}` cannot cross into a unit: .*{why}.*Fix: "):
        snapshot_ctx(ctx)


# ------------------------------------------------------------------------------------------ end to end


def _seen_by_tool(ctx: RunContext[Any]) -> dict[str, Any]:
    # Copied: `usage` is the run's live object and keeps counting after the tool returns.
    seen = {name: copy.deepcopy(getattr(ctx, name)) for name in CARRIED}
    remaining = ctx.remaining_time()
    seen["remaining_time_ok"] = remaining is not None and 0 < remaining <= 600
    # Differ between two runs by design: ids are fresh per run, and the deadline is measured from each start.
    for name in ("run_id", "conversation_id", "deadline"):
        seen[name] = getattr(ctx, name) is not None
    return seen


async def test_a_tool_in_a_unit_sees_the_context_the_bare_tool_sees() -> None:
    seen: list[dict[str, Any]] = []
    agent = Agent(
        tool_loop_model(2),
        name="ctx_e2e",
        model_settings={"temperature": 0.3},
        validation_context={"unit": "cm"},
    )

    @agent.tool
    def step(ctx: RunContext[None], i: int) -> str:
        seen.append(_seen_by_tool(ctx))
        return f"r{i}"

    prompt = ["look at", ImageUrl("https://example.com/cat.png"), BinaryImage(b"\x89PNG", media_type="image/png")]
    run_args: dict[str, Any] = {
        "usage_limits": UsageLimits(request_limit=7, tool_calls_limit=9),
        "model_settings": {"max_tokens": 99},
        "metadata": {"tenant": "acme"},
        "timeout": 600,
    }
    bare = await agent.run(prompt, **run_args)
    with record_units() as units:
        durable = await LocalAgent(agent).run(prompt, **run_args)

    assert durable.output == bare.output
    assert units.kinds.count("call") == 2
    in_bare, in_units = seen[:2], seen[2:]
    assert in_units == in_bare
    first = in_units[0]
    assert first["usage_limits"] == UsageLimits(request_limit=7, tool_calls_limit=9)
    assert first["model_settings"] == {"temperature": 0.3, "max_tokens": 99}
    assert first["validation_context"] == {"unit": "cm"}
    assert first["prompt"] == prompt
    assert first["remaining_time_ok"]


async def test_a_delegate_run_from_a_unit_is_limited_as_in_the_bare_agent() -> None:
    delegate = Agent(tool_loop_model(3), name="ctx_delegate")  # four requests

    @delegate.tool_plain
    def step(i: int) -> str:
        return "x"

    outer = Agent(tool_loop_model(1, tool_name="ask"), name="ctx_outer")
    delegate_runs: list[str] = []

    @outer.tool
    async def ask(ctx: RunContext[None], i: int) -> str:
        delegate_runs.append("started")
        result = await delegate.run("sub task", usage=ctx.usage, usage_limits=ctx.usage_limits)
        # An unlimited delegate gets here; the container would then only refuse the outer run's next request.
        delegate_runs.append("finished")
        return result.output

    limits = UsageLimits(request_limit=3)
    with pytest.raises(UsageLimitExceeded, match="request_limit of 3"):
        await outer.run("go", usage_limits=limits)
    assert delegate_runs == ["started"]
    with record_units() as units, pytest.raises(UsageLimitExceeded, match="request_limit of 3"):
        await LocalAgent(outer).run("go", usage_limits=limits)
    assert units.kinds == ["model", "call"]
    assert delegate_runs == ["started", "started"]  # stopped inside the tool unit, as in the bare agent

    # With room for the delegate, both complete the same way.
    roomy = UsageLimits(request_limit=6)
    assert (await LocalAgent(outer).run("go", usage_limits=roomy)).output == (
        await outer.run("go", usage_limits=roomy)
    ).output


async def test_unserializable_metadata_fails_before_any_unit() -> None:
    agent = Agent(tool_loop_model(1), name="ctx_meta")

    @agent.tool_plain
    def step(i: int) -> str:
        return "x"

    with record_units() as units, pytest.raises(SerializationError, match=r"`metadata` cannot cross.*Fix: "):
        await LocalAgent(agent).run("go", metadata={"client": object()})
    assert units.events == []


async def test_metadata_from_a_function_is_refused_before_the_first_unit_that_carries_the_context() -> None:
    agent = Agent(tool_loop_model(1), name="ctx_meta_fn", metadata=lambda ctx: {"since": datetime.now(UTC)})
    ran: list[int] = []

    @agent.tool_plain
    def step(i: int) -> str:
        ran.append(i)
        return "x"

    with record_units() as units, pytest.raises(SerializationError, match=r"`metadata`.*\['since'\] is a datetime"):
        await LocalAgent(agent).run("go")
    assert units.kinds == ["model"] and ran == []  # the tool unit never started


def test_deadline_keeps_its_instant() -> None:
    model = TestModel()
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    ctx = RunContext(deps=None, model=model, usage=RunUsage(), deadline=deadline)
    restored = restore_ctx(_through_a_frame(snapshot_ctx(ctx)), deps=None, model=model)
    remaining = restored.remaining_time()
    assert remaining is not None and 0 < remaining <= 30


def known_unit(value: str, info: ValidationInfo) -> str:
    if value not in info.context["units"]:  # a TypeError without the context
        raise ValueError(f"unknown unit {value!r}")
    return value


async def test_tool_arguments_are_validated_with_the_validation_context_inside_the_unit() -> None:
    model = FunctionModel(
        lambda messages, info: ModelResponse(
            parts=[TextPart("done")] if len(messages) > 1 else [ToolCallPart("convert", {"unit": "cm"})]
        )
    )
    agent = Agent(model, name="ctx_validation", validation_context={"units": ["cm", "kg"]})
    converted: list[str] = []

    @agent.tool_plain
    def convert(unit: Annotated[str, AfterValidator(known_unit)]) -> str:
        converted.append(unit)
        return unit

    await agent.run("go")
    await LocalAgent(agent).run("go")
    assert converted == ["cm", "cm"]
