"""Acceptance of the engine-neutral core, through the local engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from pydantic import AfterValidator
from pydantic_ai import Agent, ModelRetry, RunContext
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import (
    AgentStreamEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    ModelMessage,
    ModelResponse,
    PartDeltaEvent,
    TextPart,
    ToolCallPart,
)
from pydantic_ai.models import ModelRequestParameters, infer_model_profile
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.toolsets import FunctionToolset
from pydantic_ai.usage import RunUsage

from durable_agents import durable
from durable_agents._model import DurableModel
from durable_agents.exceptions import (
    AgentNameRequiredError,
    ContainerUsageError,
    InvalidConfigValueError,
    PayloadTooLargeError,
    ToolsetIdRequiredError,
    UnitFailedError,
    UnknownConfigKeyError,
    UnregisteredModelError,
    UnserializableDepsError,
    UnsupportedCapabilityError,
)
from durable_agents.local import LocalAgent
from durable_agents.testing import record_units, tool_loop_model


def make_agent(rounds: int = 3, *, parallel: int = 1, name: str | None = "demo") -> Agent[None, str]:
    agent = Agent(tool_loop_model(rounds, parallel=parallel), name=name)

    @agent.tool_plain
    async def step(i: int) -> str:
        # Later calls finish first, so completion order differs from call order.
        await asyncio.sleep(0.02 * (parallel - i % parallel))
        return f"r{i}"

    return agent


async def test_same_output_and_units_in_order() -> None:
    agent = make_agent(3)
    bare = await agent.run("go")
    with record_units() as units:
        result = await durable(agent, engine="local").run("go")
    assert result.output == bare.output == "done: r0, r1, r2"
    assert units.labels == [
        "demo.model",
        "demo.toolset.agent.call/step",
        "demo.model",
        "demo.toolset.agent.call/step",
        "demo.model",
        "demo.toolset.agent.call/step",
        "demo.model",
    ]
    assert [m.kind for m in result.all_messages()] == [m.kind for m in bare.all_messages()]


def test_run_sync() -> None:
    assert durable(make_agent(1), engine="local").run_sync("go").output == "done: r0"


async def test_events_reach_handler_in_call_order_with_parallel_tools() -> None:
    agent = make_agent(1, parallel=4)
    seen: list[AgentStreamEvent] = []

    async def handler(ctx: RunContext[None], stream: AsyncIterable[AgentStreamEvent]) -> None:
        async for event in stream:
            seen.append(event)

    with record_units() as units:
        result = await LocalAgent(agent, event_stream_handler=handler).run("go")
    assert result.output == "done: r0, r1, r2, r3"
    calls = [e.part.args_as_dict() for e in seen if isinstance(e, FunctionToolCallEvent)]
    results = [e.part.content for e in seen if isinstance(e, FunctionToolResultEvent)]
    assert calls == [{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}]
    assert results == ["r0", "r1", "r2", "r3"]  # call order, though r3 finished first
    # The handler saw the live token stream of the final answer inside the model unit.
    assert any(isinstance(e, PartDeltaEvent) for e in seen)
    assert units.kinds.count("events") == 1
    assert units.kinds.count("call") == 4


async def test_run_time_handler_on_local_engine() -> None:
    seen: list[str] = []

    async def handler(ctx: RunContext[None], stream: AsyncIterable[AgentStreamEvent]) -> None:
        async for event in stream:
            seen.append(event.event_kind)

    await LocalAgent(make_agent(1)).run("go", event_stream_handler=handler)
    assert "function_tool_call" in seen and "function_tool_result" in seen


# ------------------------------------------------------------------------------------------ bad input


def test_agent_without_name() -> None:
    with pytest.raises(AgentNameRequiredError, match="name='my_agent'"):
        durable(Agent(TestModel()), engine="local")


def test_toolset_without_id() -> None:
    def lookup(q: str) -> str:
        return q

    agent = Agent(TestModel(), name="a", toolsets=[FunctionToolset([lookup])])
    with pytest.raises(ToolsetIdRequiredError, match="FunctionToolset"):
        durable(agent, engine="local")


def test_unknown_config_key() -> None:
    with pytest.raises(UnknownConfigKeyError, match=r"'max_atempts'.*max_attempts"):
        LocalAgent(make_agent(), model_unit_config={"max_atempts": 3})  # type: ignore[typeddict-unknown-key]


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"max_attempts": "three"}, "max_attempts"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
    ],
)
def test_config_values_are_checked_when_the_wrapper_is_built(config: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidConfigValueError, match=rf"for '{key}' in the model LocalUnitConfig"):
        LocalAgent(make_agent(), model_unit_config=config)  # type: ignore[arg-type]


async def test_run_in_container_outside_a_run_is_a_container_usage_error() -> None:
    with record_units() as units, pytest.raises(ContainerUsageError, match=r"Fix: call `run\(\)`"):
        await LocalAgent(make_agent()).run_in_container("go")
    assert units.labels == []


def test_caller_config_is_not_mutated() -> None:
    base = {"max_attempts": 2}
    tool_cfgs: dict[str, Any] = {"step": {"timeout_seconds": 5.0}}
    agent = LocalAgent(make_agent(), unit_config=base, tool_unit_configs=tool_cfgs)  # type: ignore[arg-type]
    assert agent.unit_configs.for_tool("agent", "step") == {"max_attempts": 2, "timeout_seconds": 5.0}
    assert base == {"max_attempts": 2} and tool_cfgs == {"step": {"timeout_seconds": 5.0}}


@dataclass
class Deps:
    client: Any


async def test_unserializable_deps_fail_before_any_unit() -> None:
    agent = Agent(tool_loop_model(1), name="deps", deps_type=Deps)

    @agent.tool
    def step(ctx: RunContext[Deps], i: int) -> str:
        return "x"

    with record_units() as units, pytest.raises(UnserializableDepsError, match="deps_type"):
        await durable(agent, engine="local").run("go", deps=Deps(client=object()))
    assert units.events == []


async def test_capability_the_engine_lacks() -> None:
    with pytest.raises(UnsupportedCapabilityError, match=r"local engine does not support 'durable'.*dbos"):
        durable(make_agent(), engine="local", require=["durable"])
    with pytest.raises(UnsupportedCapabilityError, match="Unknown capability"):
        durable(make_agent(), engine="local", require=["teleport"])


async def test_unregistered_model_instance_in_container() -> None:
    agent = make_agent()
    with record_units() as units, pytest.raises(UnregisteredModelError, match="models="):
        await LocalAgent(agent).run("go", model=TestModel())
    assert units.events == []


async def test_registered_and_string_models() -> None:
    other = tool_loop_model(0, final="from the other model")
    local = LocalAgent(make_agent(), models={"other": other})
    assert (await local.run("go", model="other")).output == "from the other model"
    assert (await local.run("go", model=other)).output == "from the other model"
    # A 'provider:model' string is resolved by name on the unit side.
    assert (await local.run("go", model="test")).output == '{"step":"r0"}'


async def test_streaming_apis_and_iter_are_durable_inside_a_container() -> None:
    agent = make_agent(1)
    local = LocalAgent(agent)
    from durable_agents.local._agent import _IN_CONTAINER  # pyright: ignore[reportPrivateUsage]

    token = _IN_CONTAINER.set(True)
    try:
        # In a container, iter and the streaming methods go over a durable run: its I/O runs as units.
        with record_units() as units:
            async with local.iter("go") as run:
                async for _ in run:
                    pass
            async with local.run_stream("go") as stream:
                assert await stream.get_output() == "done: r0"
            async with local.run_stream_events("go") as events:
                assert [e async for e in events][-1].result.output == "done: r0"  # pyright: ignore[reportAttributeAccessIssue,reportUnknownMemberType]
        assert run.result is not None and run.result.output == "done: r0"
        assert units.labels == ["demo.model", "demo.toolset.agent.call/step", "demo.model"] * 3
    finally:
        _IN_CONTAINER.reset(token)
    # Outside a container, iter behaves like the bare agent.
    async with local.iter("go") as run:
        async for _ in run:
            pass
    assert run.result is not None and run.result.output == "done: r0"


def test_override_of_tools_is_refused() -> None:
    with (
        pytest.raises(ContainerUsageError, match="fixed when it is wrapped"),
        LocalAgent(make_agent()).override(tools=[]),
    ):
        pass


# ------------------------------------------------------------------------------------------ outcomes


async def test_model_retry_from_tool_is_a_value_not_an_engine_retry() -> None:
    agent = Agent(tool_loop_model(1), name="retry")
    attempts: list[int] = []

    @agent.tool_plain
    def step(i: int) -> str:
        attempts.append(i)
        if len(attempts) == 1:
            raise ModelRetry("try again please")
        return "fine"

    with record_units() as units:
        result = await LocalAgent(agent, unit_config={"max_attempts": 5}).run("go")
    retried = [p for m in result.all_messages() for p in m.parts if getattr(p, "outcome", None) == "retried"]
    assert [p.content for p in retried] == ["try again please"]
    assert result.output == "done: fine"
    assert units.kinds == ["model", "call", "model", "call", "model"]
    assert len(attempts) == 2


async def test_fatal_errors_are_not_retried_and_retryable_ones_are() -> None:
    calls: list[str] = []
    agent = Agent(tool_loop_model(1), name="fatal")

    @agent.tool_plain
    def step(i: int) -> str:
        calls.append("x")
        raise UserError("misconfigured tool")

    with pytest.raises(UserError, match="misconfigured tool"):
        await LocalAgent(agent, unit_config={"max_attempts": 4}).run("go")
    assert len(calls) == 1

    flaky: list[int] = []
    agent2 = Agent(tool_loop_model(1), name="flaky")

    @agent2.tool_plain
    def step2(i: int) -> str:
        flaky.append(i)
        if len(flaky) < 3:
            raise ConnectionError("transient")
        return "ok"

    agent2 = Agent(tool_loop_model(1, tool_name="step2"), name="flaky", tools=[step2])
    result = await LocalAgent(agent2, unit_config={"max_attempts": 4}).run("go")
    assert result.output == "done: ok" and len(flaky) == 3

    flaky.clear()
    with pytest.raises(ConnectionError):
        await LocalAgent(agent2, unit_config={"max_attempts": 2}).run("go")
    assert len(flaky) == 2


async def test_tool_opt_out_runs_inline() -> None:
    with record_units() as units:
        result = await LocalAgent(make_agent(2), tool_unit_configs={"step": None}).run("go")
    assert result.output == "done: r0, r1"
    assert units.kinds == ["model", "model", "model"]


async def test_opt_out_of_unknown_tool_is_an_error() -> None:
    from durable_agents.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="not a function tool"):
        LocalAgent(make_agent(), tool_unit_configs={"nope": None})


async def test_usage_recorded_inside_a_tool_reaches_the_run() -> None:
    agent = Agent(tool_loop_model(1), name="delegating")

    @agent.tool
    async def step(ctx: RunContext[None], i: int) -> str:
        ctx.usage.incr(RunUsage(requests=1, input_tokens=100, output_tokens=7))
        return "delegated"

    result = await LocalAgent(agent).run("go")
    bare = await agent.run("go")
    assert result.usage.input_tokens == bare.usage.input_tokens
    assert result.usage.requests == bare.usage.requests


async def test_oversized_tool_result_is_a_typed_error_naming_the_tool() -> None:
    agent = Agent(tool_loop_model(1), name="big")

    @agent.tool_plain
    def step(i: int) -> str:
        return "x" * 50_000

    with pytest.raises(PayloadTooLargeError, match=r"tool 'step'.*50,[0-9]{3} bytes"):
        await LocalAgent(agent, max_payload_bytes=10_000, unit_config={"max_attempts": 3}).run("go")


async def test_fatal_error_of_an_unknown_type_becomes_unit_failed() -> None:
    class Boom(Exception):
        status_code = 400  # a client error: fatal by the error policy, but not a class the container may rebuild

    agent = Agent(tool_loop_model(1), name="boom")

    @agent.tool_plain
    def step(i: int) -> str:
        raise Boom("local class")

    with pytest.raises(UnitFailedError, match="Boom: local class") as info:
        await LocalAgent(agent).run("go")
    assert info.value.error_type == "Boom"


async def test_subclass_of_an_allowed_error_is_rebuilt_as_the_allowed_class() -> None:
    class Boom(UserError):
        pass

    agent = Agent(tool_loop_model(1), name="boom_user")

    @agent.tool_plain
    def step(i: int) -> str:
        raise Boom("local class")

    with pytest.raises(UserError, match="local class") as info:
        await LocalAgent(agent).run("go")
    assert type(info.value) is UserError


async def test_dynamic_toolset_is_listed_every_step_in_a_unit() -> None:
    listings: list[int] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) < 3:
            return ModelResponse(parts=[ToolCallPart("lookup", {"q": f"q{len(messages)}"})])
        return ModelResponse(parts=[TextPart(",".join(t.name for t in info.function_tools))])

    agent = Agent(FunctionModel(model), name="dyn")

    @agent.toolset(id="dynamic")
    def tools(ctx: RunContext[None]) -> FunctionToolset[None]:
        listings.append(ctx.run_step)

        def lookup(q: str) -> str:
            return q.upper()

        return FunctionToolset([lookup])

    await agent.run("go")
    bare_steps = sorted(set(listings))
    listings.clear()
    with record_units() as units:
        result = await LocalAgent(agent).run("go")
    assert result.output == "lookup"
    assert units.labels[:3] == ["dyn.toolset.dynamic.list", "dyn.model", "dyn.toolset.dynamic.call/lookup"]
    # pydantic-ai re-evaluates a dynamic toolset at every run step; so does the durable run, in a listing unit.
    assert bare_steps == [1, 2]
    assert units.kinds.count("list") == 2
    assert sorted(set(listings)) == bare_steps


# ------------------------------------------------------------------------------------------ models


def keyless_agent(name: str = "keyless") -> Agent[None, str]:
    # `defer_model_check` keeps the string: the Agent itself would otherwise build the provider at once.
    return Agent("openai:gpt-4o", name=name, defer_model_check=True)


async def test_a_model_string_is_built_only_in_the_model_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    local = LocalAgent(keyless_agent(), model_unit_config={"max_attempts": 3})
    with record_units() as units, pytest.raises(UserError, match="OPENAI_API_KEY"):
        await local.run("go")
    # The container ran without the credentials; the provider's own error came from the unit, once (it is fatal).
    assert units.labels == ["keyless.model"]


def test_the_container_stand_in_for_a_model_string_builds_no_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    stand_in = DurableModel("openai:gpt-4o", LocalAgent(keyless_agent()))
    assert (stand_in.system, stand_in.model_name, stand_in.model_id) == ("openai", "gpt-4o", "openai:gpt-4o")
    assert stand_in.profile == infer_model_profile("openai:gpt-4o")
    assert stand_in.provider is None
    settings, params = stand_in.prepare_request({"temperature": 0.5}, ModelRequestParameters())
    assert settings == {"temperature": 0.5} and params.output_mode == "text"
    with pytest.raises(UserError, match="Unknown model: 'gpt4o'"):
        DurableModel("gpt4o", LocalAgent(keyless_agent()))


async def test_override_of_the_plain_agent_reaches_the_units() -> None:
    agent = make_agent(2)
    local = LocalAgent(agent)
    with agent.override(model=tool_loop_model(0, final="from the override")), record_units() as units:
        result = await local.run("go")
    assert result.output == "from the override"
    assert units.labels == ["demo.model"]


async def test_override_of_the_wrapper_with_any_model_wins_over_the_run_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    other = tool_loop_model(0, final="registered")
    local = LocalAgent(keyless_agent(), models={"other": other})
    with local.override(model=tool_loop_model(0, final="from the override")):
        assert (await local.run("go")).output == "from the override"
        # As in pydantic-ai, an override wins over the run's own `model=`.
        assert (await local.run("go", model="other")).output == "from the override"
    with local.override(model="other"):  # a `models=` key, which pydantic-ai alone would not know
        assert (await local.run("go")).output == "registered"


async def test_override_of_one_wrapper_leaves_other_agents_alone() -> None:
    first, second = LocalAgent(make_agent(1, name="first")), LocalAgent(make_agent(1, name="second"))
    with first.override(model=tool_loop_model(0, final="overridden")):
        assert (await first.run("go")).output == "overridden"
        assert (await second.run("go")).output == "done: r0"


async def test_an_agent_without_a_model_uses_the_first_registered_one() -> None:
    models = {"first": tool_loop_model(0, final="first"), "second": tool_loop_model(0, final="second")}
    local = LocalAgent(Agent(None, name="modelless"), models=models)
    assert (await local.run("go")).output == "first"
    assert (await local.run("go", model="second")).output == "second"


async def test_tool_units_build_no_model_so_a_tool_worker_needs_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from durable_agents._frames import ReturnOutcome, ToolInput, decode_outcome, encode

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    agent = Agent("openai:gpt-4o", name="keyless_tools", defer_model_check=True)

    @agent.tool
    def whoami(ctx: RunContext[None]) -> str:
        return ctx.model.model_name

    durable = LocalAgent(agent)
    tool_unit = next(u for u in durable.units if u.kind.value == "call")
    outcome = decode_outcome(await tool_unit.body(encode(ToolInput(tool="whoami", ctx={"run_step": 1}))))
    assert isinstance(outcome, ReturnOutcome)
    assert outcome.value == "gpt-4o"


async def test_a_transforming_argument_validator_applies_once_as_in_the_bare_agent() -> None:
    agent = Agent(tool_loop_model(1), name="doubling")

    @agent.tool_plain
    def step(i: Annotated[int, AfterValidator(lambda v: v + 10)]) -> str:
        return f"r{i}"

    bare = await agent.run("go")
    durable = await LocalAgent(agent).run("go")
    assert bare.output == "done: r10"
    assert durable.output == bare.output
