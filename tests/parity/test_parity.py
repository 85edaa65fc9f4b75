"""The same scenarios on every engine, compared with the bare agent: a difference on one engine fails there."""

from __future__ import annotations

import logfire
import pytest

from durable_agents.testing import record_units

from . import scenarios
from .conftest import RunFailed, Runner

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_history_processor_that_redacts_in_place_is_what_the_model_sees(run: Runner) -> None:
    scenarios.SEEN.clear()
    await scenarios.redact.run("go")
    bare = [scenarios.tool_returns(m) for m in scenarios.SEEN]
    scenarios.SEEN.clear()
    assert await run("parity_redact", "go") == "ok"
    assert [scenarios.tool_returns(m) for m in scenarios.SEEN] == bare
    assert bare[-1] == ["[redacted]", "[redacted]", "secret-2"]


async def same_as_bare(run: Runner, name: str, prompt: str = "go") -> str:
    """Run scenario `name` on the bare agent and on the engine, check both answer alike, and return the answer.

    Tool counts (`scenarios.CALLS`, `TOOL_RUNS`) are those of the engine's run.
    """
    bare = str((await scenarios.AGENTS[name].run(prompt, **scenarios.run_kwargs(name))).output)
    scenarios.CALLS.clear()
    scenarios.data_analyst.TOOL_RUNS.clear()
    assert await run(name, prompt) == bare
    return bare


async def test_a_dynamic_toolset_that_adds_a_tool_after_the_first_step(run: Runner) -> None:
    bare = await same_as_bare(run, "parity_grow")
    assert bare == "offered=['first', 'second'] results=['first:1', 'second:2']"
    assert scenarios.CALLS == {"parity_grow.first": 1, "parity_grow.second": 1}


async def fails_after_one_tool_call(run: Runner, name: str, error_type: str) -> str:
    """Run scenario `name`, check it fails with `error_type` after its tool `step` ran once; return the message."""
    with pytest.raises(RunFailed) as info:
        await run(name, "go")
    assert info.value.error_type == error_type
    assert scenarios.CALLS[f"{name}.step"] == 1
    return str(info.value)


async def test_a_tool_result_that_cannot_be_serialized_runs_once_and_fails_typed(run: Runner) -> None:
    assert "step" in await fails_after_one_tool_call(run, "parity_unserializable", "SerializationError")


async def test_a_usage_limit_exceeded_inside_a_tool_runs_once_and_fails_the_run(run: Runner) -> None:
    await fails_after_one_tool_call(run, "parity_limited", "UsageLimitExceeded")


async def test_the_data_analyst_example_keeps_what_one_tool_stores_in_deps_for_the_next(run: Runner) -> None:
    analyst = scenarios.data_analyst
    bare = await same_as_bare(run, "parity_analyst", analyst.PROMPT)
    assert bare == "Negative reviews:\ncount_star()\n3"
    assert analyst.TOOL_RUNS == ["load_dataset", "run_duckdb", "display"]


async def test_a_dynamic_toolset_follows_deps_a_tool_changed(run: Runner) -> None:
    bare = await same_as_bare(run, "parity_follow")
    assert bare == "offered=['secret', 'unlock'] results=['unlocked', 'the secret']"
    assert scenarios.CALLS == {"parity_follow.unlock": 1, "parity_follow.secret": 1}


async def test_a_deps_change_that_cannot_be_carried_fails_typed_naming_the_field(run: Runner) -> None:
    message = await fails_after_one_tool_call(run, "parity_keep_lock", "UnserializableDepsError")
    assert "Tool 'step'" in message and "`deps.keep['lock']` has no JSON form" in message


async def test_a_run_time_toolset_that_executes_nothing_ends_the_run_with_deferred_requests(run: Runner) -> None:
    bare = await same_as_bare(run, "parity_external")
    assert bare.startswith("DeferredToolRequests(calls=[ToolCallPart(tool_name='ask_user'")


@pytest.mark.parametrize("name", ["parity_grow", "parity_analyst"])
async def test_iter_in_container_code_goes_node_by_node_over_a_durable_run(run_in_container: Runner, name: str) -> None:
    prompt = scenarios.data_analyst.PROMPT if name == "parity_analyst" else "go"
    bare = await scenarios.in_container_code(scenarios.AGENTS[name], name, prompt, "iter")
    assert bare.startswith("['UserPromptNode', 'ModelRequestNode', 'CallToolsNode', 'ModelRequestNode'")
    scenarios.CALLS.clear()
    scenarios.data_analyst.TOOL_RUNS.clear()
    recorder = record_units()
    with recorder as units:
        assert await run_in_container(name, prompt, "iter") == bare
    # Durable: every model request and tool call of the iteration ran as a unit of the engine.
    labels = [label.removeprefix(f"{name}.") for label in units.labels]
    assert labels.count("model") == bare.count("ModelRequestNode")
    assert len([label for label in labels if ".call/" in label]) == bare.count("CallToolsNode") - 1


@pytest.mark.parametrize("mode", ["run_stream", "run_stream_events"])
async def test_streaming_in_container_code_is_buffered_over_a_durable_run(run_in_container: Runner, mode: str) -> None:
    bare = await scenarios.in_container_code(scenarios.stream, "parity_stream", "go", mode)
    assert bare.endswith("done: r0, r1")
    scenarios.CALLS.clear()
    with record_units() as units:
        assert await run_in_container("parity_stream", "go", mode) == bare
    assert scenarios.CALLS == {"parity_stream.step": 2}
    labels = [label.removeprefix("parity_stream.") for label in units.labels]
    assert labels == ["model", "toolset.agent.call/step", "model", "toolset.agent.call/step", "model"]


async def test_logfire_instrumented_code_in_the_agent_module_runs_in_the_container(run: Runner) -> None:
    logfire.configure(send_to_logfire=False, console=False, metrics=False, distributed_tracing=False)
    bare = (await scenarios.traced.run("go")).output
    assert bare == "done: Be brief with r0."
    scenarios.CALLS.clear()
    assert await run("parity_traced", "go") == bare
    assert scenarios.CALLS == {"parity_traced.step": 1}


async def test_an_event_handler_that_raises_fails_the_run_once_without_asking_the_model_again(run: Runner) -> None:
    with pytest.raises(RunFailed) as info:
        await run("parity_bad_handler", "go")
    assert info.value.error_type == "EventHandlerError"
    assert "the dashboard is down" in str(info.value)
    # The handler sees the first model request's stream; a retry would pay for that request again.
    assert scenarios.CALLS["parity_bad_handler.model"] == 1
    assert scenarios.CALLS["parity_bad_handler.step"] == 0


async def test_structured_output_with_a_validator_that_retries(run: Runner) -> None:
    bare = str((await scenarios.structured.run("go")).output)
    assert bare == "name='Paris' population=2100000"
    assert scenarios.CALLS == {"parity_structured.census": 1, "parity_structured.validator": 2}
    scenarios.CALLS.clear()
    # The model answers with the valid population only after the validator sent its first answer back.
    assert await run("parity_structured", "go") == bare
    assert scenarios.CALLS["parity_structured.census"] == 1


async def test_native_output_with_a_validator_that_retries(run: Runner) -> None:
    bare = str((await scenarios.native.run("go")).output)
    assert bare == "name='Paris' population=2100000"
    scenarios.CALLS.clear()
    assert await run("parity_native", "go") == bare


async def test_a_tool_that_needs_approval_defers_then_runs_once_when_approved(run: Runner) -> None:
    bare = await scenarios.FLOWS["parity_approve"](scenarios.approve, "go")
    assert bare == "['transfer'] -> done: sent 5"
    scenarios.CALLS.clear()
    assert await run("parity_approve", "go") == bare
    assert scenarios.CALLS == {"parity_approve.transfer": 1}


async def test_an_mcp_server_over_stdio_is_listed_and_called(run: Runner) -> None:
    bare = (await scenarios.mcp.run("go")).output
    assert bare.startswith("add,broken|add=5")
    assert await run("parity_mcp", "go") == bare
