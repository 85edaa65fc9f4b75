"""The same scenarios on every engine, compared with the bare agent: a difference on one engine fails there."""

from __future__ import annotations

import logfire
import pytest

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


async def test_a_dynamic_toolset_that_adds_a_tool_after_the_first_step(run: Runner) -> None:
    bare = (await scenarios.grow.run("go")).output
    assert bare == "offered=['first', 'second'] results=['first:1', 'second:2']"
    scenarios.CALLS.clear()
    assert await run("parity_grow", "go") == bare
    assert scenarios.CALLS == {"parity_grow.first": 1, "parity_grow.second": 1}


async def test_a_tool_result_that_cannot_be_serialized_runs_once_and_fails_typed(run: Runner) -> None:
    with pytest.raises(RunFailed) as info:
        await run("parity_unserializable", "go")
    assert info.value.error_type == "SerializationError"
    assert "step" in str(info.value)
    assert scenarios.CALLS["parity_unserializable.step"] == 1


async def test_a_usage_limit_exceeded_inside_a_tool_runs_once_and_fails_the_run(run: Runner) -> None:
    with pytest.raises(RunFailed) as info:
        await run("parity_limited", "go")
    assert info.value.error_type == "UsageLimitExceeded"
    assert scenarios.CALLS["parity_limited.step"] == 1


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
