"""DBOSAgent on a real DBOS, SQLite and PostgreSQL: outputs, step journals, configs, tool outcomes, events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable
from typing import Any

import pytest
from dbos import DBOS, SetWorkflowID
from pydantic_ai import Agent, ModelRetry, RunContext
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import (
    AgentStreamEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    ModelMessage,
    ModelResponse,
    TextPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.toolsets import FunctionToolset

from durable_agents.dbos import DBOSAgent, StepConfig
from durable_agents.exceptions import ContainerUsageError
from durable_agents.testing import record_units, tool_loop_model

pytestmark = pytest.mark.dbos

Launch = Callable[[], None]


async def step_names(workflow_id: str) -> list[str]:
    return [s["function_name"] for s in await DBOS.list_workflow_steps_async(workflow_id)]


def loop_agent(name: str, rounds: int, parallel: int = 1) -> Agent[None, str]:
    agent = Agent(tool_loop_model(rounds, parallel=parallel), name=name)

    @agent.tool_plain
    def step(i: int) -> str:
        return f"r{i}"

    return agent


async def test_k_rounds_same_output_as_bare_agent_and_steps_in_order(launch: Launch) -> None:
    agent = loop_agent("k4", rounds=4)
    dbos_agent = DBOSAgent(agent)
    launch()
    bare = await agent.run("go")
    with record_units() as units, SetWorkflowID("k4-run"):
        result = await dbos_agent.run("go")
    assert result.output == bare.output == "done: r0, r1, r2, r3"
    model, call = "k4.model", "k4.toolset.agent.call/step"
    assert await step_names("k4-run") == [model, call, model, call, model, call, model, call, model]
    assert units.labels == await step_names("k4-run")
    status = await DBOS.get_workflow_status_async("k4-run")
    assert status is not None and status.name == "k4.run" and status.status == "SUCCESS"
    assert result.usage.requests == bare.usage.requests == 5


def test_run_sync_is_a_workflow_too(launch: Launch) -> None:
    dbos_agent = DBOSAgent(loop_agent("sync", rounds=1))
    launch()
    loop = asyncio.new_event_loop()  # run_sync drives the current loop; own it so it is closed afterwards
    asyncio.set_event_loop(loop)
    try:
        with SetWorkflowID("sync-run"):
            result = dbos_agent.run_sync("go")
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    assert result.output == "done: r0"
    steps = [s["function_name"] for s in DBOS.list_workflow_steps("sync-run")]
    assert steps == ["sync.model", "sync.toolset.agent.call/step", "sync.model"]


async def test_run_inside_a_user_workflow_is_a_child_workflow(launch: Launch) -> None:
    dbos_agent = DBOSAgent(loop_agent("child", rounds=1))

    @DBOS.workflow(name="parent")
    async def parent() -> str:
        first = await dbos_agent.run("go")
        second = await dbos_agent.run("again")
        return f"{first.output} | {second.output}"

    launch()
    with SetWorkflowID("parent-run"):
        assert await parent() == "done: r0 | done: r0"
    steps = await DBOS.list_workflow_steps_async("parent-run")
    children = sorted({s["child_workflow_id"] for s in steps if s["child_workflow_id"]})
    assert len(children) == 2
    for child in children:
        assert await step_names(child) == ["child.model", "child.toolset.agent.call/step", "child.model"]


async def test_parallel_tool_calls_checkpoint_in_call_order(launch: Launch) -> None:
    agent = Agent(tool_loop_model(2, parallel=3), name="par")
    seen: list[str] = []

    @agent.tool_plain
    async def step(i: int) -> str:
        await asyncio.sleep(0.01 * (3 - i % 3))  # later calls finish first
        return f"r{i}"

    async def handler(ctx: RunContext[None], stream: AsyncIterable[AgentStreamEvent]) -> None:
        async for event in stream:
            if isinstance(event, FunctionToolCallEvent):
                seen.append(f"call:{event.part.args_as_dict()['i']}")
            elif isinstance(event, FunctionToolResultEvent):
                seen.append(f"result:{event.part.content}")

    dbos_agent = DBOSAgent(agent, event_stream_handler=handler)
    launch()
    with SetWorkflowID("par-run"):
        result = await dbos_agent.run("go")
    assert result.output == "done: r0, r1, r2, r3, r4, r5"
    call = "par.toolset.agent.call/step"
    assert await step_names("par-run") == [
        *["par.model", call, call, call, "par.events"],
        *["par.model", call, call, call, "par.events"],
        "par.model",
    ]
    tool_outputs = [s["output"] for s in await DBOS.list_workflow_steps_async("par-run") if s["function_name"] == call]
    assert [b'"r%d"' % i in out for i, out in enumerate(tool_outputs)] == [True] * 6
    assert seen == [
        *["call:0", "call:1", "call:2", "result:r0", "result:r1", "result:r2"],
        *["call:3", "call:4", "call:5", "result:r3", "result:r4", "result:r5"],
    ]


async def test_sequential_mode_runs_tools_one_by_one(launch_sqlite: Launch) -> None:
    agent = Agent(tool_loop_model(1, parallel=2), name="seq")
    running: list[int] = []
    overlaps: list[int] = []

    @agent.tool_plain
    async def step(i: int) -> str:
        running.append(i)
        overlaps.append(len(running))
        await asyncio.sleep(0.01)
        running.remove(i)
        return f"r{i}"

    dbos_agent = DBOSAgent(agent, parallel_execution_mode="sequential")
    launch_sqlite()
    assert (await dbos_agent.run("go")).output == "done: r0, r1"
    assert overlaps == [1, 1]


async def test_tool_opt_out_and_dbos_step_tools_are_not_wrapped(launch: Launch) -> None:
    agent = Agent(tool_loop_model(1, tool_name="inline", final="ok"), name="optout")
    agent2 = Agent(tool_loop_model(1, tool_name="stepped", final="ok"), name="userstep")

    @agent.tool_plain
    def inline(i: int) -> str:
        return "inline"

    @agent2.tool_plain
    @DBOS.step(name="my_own_step")
    def stepped(i: int) -> str:
        return f"stepped {DBOS.step_id is not None}"

    # The plain function decorated elsewhere in the process: DBOS tags it too, but it is not a step itself,
    # so the agent that uses it undecorated must still journal its calls.
    def plain(i: int) -> str:
        return f"plain {DBOS.step_id is not None}"

    DBOS.step(name="plain_elsewhere")(plain)
    agent3 = Agent(tool_loop_model(1, tool_name="plain", final="ok"), name="plainuser", tools=[plain])

    optout = DBOSAgent(agent, tool_step_configs={"inline": None})
    userstep = DBOSAgent(agent2)
    plainuser = DBOSAgent(agent3)
    launch()
    with SetWorkflowID("optout-run"):
        assert (await optout.run("go")).output == "ok"
    assert await step_names("optout-run") == ["optout.model", "optout.model"]
    with SetWorkflowID("userstep-run"):
        result = await userstep.run("go")
    assert result.output == "ok"
    assert await step_names("userstep-run") == ["userstep.model", "my_own_step", "userstep.model"]
    tool_return = result.all_messages()[2].parts[0]
    assert tool_return.content == "stepped True"  # pyright: ignore[reportAttributeAccessIssue]
    with SetWorkflowID("plainuser-run"):
        result = await plainuser.run("go")
    assert await step_names("plainuser-run") == [
        "plainuser.model",
        "plainuser.toolset.agent.call/plain",
        "plainuser.model",
    ]
    assert result.all_messages()[2].parts[0].content == "plain True"  # pyright: ignore[reportAttributeAccessIssue]


async def test_model_retry_gives_retry_prompt_without_engine_retry(launch: Launch) -> None:
    calls: list[int] = []

    def build(name: str) -> Agent[None, str]:
        agent = Agent(tool_loop_model(1), name=name)

        @agent.tool_plain
        def step(i: int) -> str:
            calls.append(i)
            if len(calls) % 2 == 1:
                raise ModelRetry("try again")
            return f"r{i}"

        return agent

    bare = build("bare")
    # Retries are allowed by config: a ModelRetry is an outcome for the model, never an engine retry.
    dbos_agent = DBOSAgent(
        build("retry"), step_config=StepConfig(retries_allowed=True, max_attempts=5, interval_seconds=0.01)
    )
    launch()
    expected = (await bare.run("go")).output
    calls.clear()
    with SetWorkflowID("retry-run"):
        result = await dbos_agent.run("go")
    assert result.output == expected == "done: r0"
    # One execution per tool step: the ModelRetry went back to the model (second model step), not to DBOS.
    model, call = "retry.model", "retry.toolset.agent.call/step"
    assert await step_names("retry-run") == [model, call, model, call, model]
    assert calls == [0, 0]
    retried = [p for m in result.all_messages() for p in m.parts if getattr(p, "outcome", None) == "retried"]
    assert [p.content for p in retried] == ["try again"]  # pyright: ignore[reportAttributeAccessIssue]


def flaky_model(failures: int, status: int, attempts: list[int]) -> FunctionModel:
    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        attempts.append(status)
        if len(attempts) <= failures:
            raise ModelHTTPError(status_code=status, model_name="flaky", body={"error": "unavailable"})
        return ModelResponse(parts=[TextPart("recovered")])

    return FunctionModel(respond)


async def test_transient_model_error_is_retried_per_step_config(launch: Launch) -> None:
    attempts: list[int] = []
    agent = Agent(flaky_model(2, 503, attempts), name="flaky")
    dbos_agent = DBOSAgent(
        agent, model_step_config=StepConfig(retries_allowed=True, max_attempts=3, interval_seconds=0.01)
    )
    launch()
    with SetWorkflowID("flaky-run"):
        result = await dbos_agent.run("go")
    assert result.output == "recovered"
    assert attempts == [503, 503, 503]
    assert await step_names("flaky-run") == ["flaky.model"]


async def test_fatal_model_error_is_not_retried(launch_sqlite: Launch) -> None:
    attempts: list[int] = []
    agent = Agent(flaky_model(10, 401, attempts), name="fatal")
    dbos_agent = DBOSAgent(
        agent, model_step_config=StepConfig(retries_allowed=True, max_attempts=5, interval_seconds=0.01)
    )
    launch_sqlite()
    with SetWorkflowID("fatal-run"), pytest.raises(ModelHTTPError) as info:
        await dbos_agent.run("go")
    assert info.value.status_code == 401
    assert attempts == [401]
    status = await DBOS.get_workflow_status_async("fatal-run")
    assert status is not None and status.status == "ERROR"


async def test_misuse_in_a_tool_fails_without_retries(launch_sqlite: Launch) -> None:
    from pydantic_ai.exceptions import UserError

    agent = Agent(tool_loop_model(1), name="misuse")
    calls: list[int] = []

    @agent.tool_plain
    def step(i: int) -> str:
        calls.append(i)
        raise UserError("this tool is misconfigured")

    dbos_agent = DBOSAgent(agent, step_config=StepConfig(retries_allowed=True, max_attempts=5, interval_seconds=0.01))
    launch_sqlite()
    with pytest.raises(UserError, match="misconfigured"):
        await dbos_agent.run("go")
    assert calls == [0]


async def test_transient_tool_error_retried_with_per_tool_config(launch_sqlite: Launch) -> None:
    agent = Agent(tool_loop_model(1), name="tooltry")
    calls: list[int] = []

    @agent.tool_plain
    def step(i: int) -> str:
        calls.append(i)
        if len(calls) < 3:
            raise ConnectionError("flaky network")
        return f"r{i}"

    dbos_agent = DBOSAgent(
        agent,
        step_config=StepConfig(retries_allowed=False),
        tool_step_configs={"step": StepConfig(retries_allowed=True, max_attempts=4, interval_seconds=0.01)},
    )
    launch_sqlite()
    assert (await dbos_agent.run("go")).output == "done: r0"
    assert calls == [0, 0, 0]


async def record_event_kinds(ctx: RunContext[Any], stream: AsyncIterable[AgentStreamEvent]) -> None:
    """A module-level (picklable) per-run handler."""
    async for event in stream:
        EVENT_KINDS.append(event.event_kind)


EVENT_KINDS: list[str] = []


async def test_per_run_event_handler(launch_sqlite: Launch) -> None:
    dbos_agent = DBOSAgent(loop_agent("perrun", rounds=1))
    launch_sqlite()
    EVENT_KINDS.clear()
    with SetWorkflowID("perrun-run"):
        assert (await dbos_agent.run("go", event_stream_handler=record_event_kinds)).output == "done: r0"
    assert "function_tool_call" in EVENT_KINDS and "function_tool_result" in EVENT_KINDS
    assert "part_start" in EVENT_KINDS  # the live model stream, seen inside the model step
    assert "perrun.events" in await step_names("perrun-run")


async def test_models_registry_selects_model_at_run_time(launch_sqlite: Launch) -> None:
    agent = loop_agent("models", rounds=1)
    alt = tool_loop_model(0, final="from the alternate model")
    dbos_agent = DBOSAgent(agent, models={"alt": alt})
    launch_sqlite()
    assert (await dbos_agent.run("go", model="alt")).output == "from the alternate model"
    assert (await dbos_agent.run("go", model=alt)).output == "from the alternate model"
    assert (await dbos_agent.run("go")).output == "done: r0"


async def test_overrides_of_the_plain_agent_and_the_wrapper_reach_the_steps(launch_sqlite: Launch) -> None:
    agent = loop_agent("overridden", rounds=2)
    dbos_agent = DBOSAgent(agent, models={"alt": tool_loop_model(0, final="registered")})
    launch_sqlite()
    with agent.override(model=tool_loop_model(0, final="plain override")), SetWorkflowID("plain-override"):
        assert (await dbos_agent.run("go")).output == "plain override"
    assert await step_names("plain-override") == ["overridden.model"]
    # An instance nobody registered: the workflow stores no model, its steps find the override in this process.
    with dbos_agent.override(model=tool_loop_model(0, final="wrapper override")), SetWorkflowID("wrapper-override"):
        assert (await dbos_agent.run("go", model="alt")).output == "wrapper override"
    assert await step_names("wrapper-override") == ["overridden.model"]


async def test_message_history_and_deps_cross_into_the_workflow(launch: Launch) -> None:
    agent = Agent(tool_loop_model(1), name="deps", deps_type=int)

    @agent.tool
    def step(ctx: RunContext[int], i: int) -> str:
        return f"deps={ctx.deps}"

    dbos_agent = DBOSAgent(agent)
    launch()
    first = await dbos_agent.run("go", deps=7)
    assert first.output == "done: deps=7"
    second = await dbos_agent.run("more", deps=8, message_history=first.all_messages())
    assert second.output == "done: deps=7"  # the model sees the earlier tool return and answers at once
    assert len(second.all_messages()) == len(first.all_messages()) + 2


async def test_dynamic_toolset_is_listed_in_a_step_at_every_run_step(launch: Launch) -> None:
    agent = Agent(tool_loop_model(3, tool_name="remote"), name="dyn")
    listings: list[int] = []

    @agent.toolset(id="remote_tools")
    async def remote_tools(ctx: RunContext[None]) -> FunctionToolset[None]:
        listings.append(ctx.run_step)

        def remote(i: int) -> str:
            return f"x{i}"

        return FunctionToolset([remote])

    dbos_agent = DBOSAgent(
        agent,
        mcp_step_config=StepConfig(retries_allowed=True),
        toolset_step_configs={"remote_tools": {"max_attempts": 2}},
    )
    launch()
    with SetWorkflowID("dyn-run"):
        assert (await dbos_agent.run("go")).output == "done: x0, x1, x2"
    names = await step_names("dyn-run")
    # pydantic-ai re-evaluates a dynamic toolset before every model request: 3 tool rounds and the answer.
    assert names.count("dyn.toolset.remote_tools.list") == 4
    assert names.count("dyn.toolset.remote_tools.call/remote") == 3
    assert names[0] == "dyn.toolset.remote_tools.list"
    leaf = next(u for u in dbos_agent.units if u.name == "dyn.toolset.remote_tools.call")
    assert leaf.config == {"retries_allowed": True, "max_attempts": 2}


async def test_step_config_layering(launch_sqlite: Launch) -> None:
    agent = Agent(tool_loop_model(1), name="layers")
    agent.tool_plain(lambda i: "x", name="step")
    extra = FunctionToolset([lambda i: "y"], id="extra")
    agent2 = Agent(tool_loop_model(1), name="layers2", toolsets=[extra])
    base = StepConfig(retries_allowed=True, max_attempts=2)
    dbos_agent = DBOSAgent(
        agent,
        step_config=base,
        model_step_config={"max_attempts": 5},
        toolset_step_configs={"agent": {"interval_seconds": 0.5}},
        tool_step_configs={"step": {"backoff_rate": 3.0}},
    )
    DBOSAgent(agent2, step_config=base)
    launch_sqlite()
    assert dbos_agent.model_unit.config == {"retries_allowed": True, "max_attempts": 5}
    assert dbos_agent.unit_configs.for_tool("agent", "step") == {
        "retries_allowed": True,
        "max_attempts": 2,
        "interval_seconds": 0.5,
        "backoff_rate": 3.0,
    }


async def test_sub_agent_in_a_tool_is_a_child_workflow_when_the_tool_runs_in_the_workflow(launch: Launch) -> None:
    sub = DBOSAgent(Agent(tool_loop_model(0, final="sub answer"), name="sub"))
    hidden = {"sub": sub}  # a tool that reaches the sub-agent through a dict is not seen to delegate

    def build(name: str, *, by_name: bool) -> Agent[None, str]:
        agent = Agent(tool_loop_model(1, tool_name="delegate"), name=name)

        if by_name:

            @agent.tool_plain
            async def delegate(i: int) -> str:  # pyright: ignore[reportRedeclaration]
                return (await sub.run("question")).output

        else:

            @agent.tool_plain
            async def delegate(i: int) -> str:
                return (await hidden["sub"].run("question")).output

        return agent

    in_step = DBOSAgent(build("in_step", by_name=False))
    marked = DBOSAgent(build("marked", by_name=False), tool_step_configs={"delegate": None})
    in_workflow = DBOSAgent(build("in_workflow", by_name=True))
    launch()
    with pytest.raises(ContainerUsageError, match="tool_step_configs"):
        await in_step.run("go")
    assert (await marked.run("go")).output == "done: sub answer"
    with SetWorkflowID("delegating-run"):
        assert (await in_workflow.run("go")).output == "done: sub answer"
    steps = await DBOS.list_workflow_steps_async("delegating-run")
    children = sorted({s["child_workflow_id"] for s in steps if s["child_workflow_id"]})
    assert len(children) == 1
    assert await step_names(children[0]) == ["sub.model"]
