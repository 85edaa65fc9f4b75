"""Prefect-specific bad input: run arguments that Prefect itself would mangle or refuse."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from _pf_support import flow_runs_of, lines
from pydantic_ai import Agent
from pydantic_ai.messages import ModelRequest, UserPromptPart
from pydantic_ai.usage import RunUsage

from durable_agents.exceptions import InvalidRunInputError
from durable_agents.prefect import PrefectAgent
from durable_agents.prefect._agent import RUN_ARGS_PARAMETER
from durable_agents.testing import CallCounter, tool_loop_model

pytestmark = pytest.mark.prefect

DEPLOYED = PrefectAgent(Agent(tool_loop_model(0), name=f"deployed_{uuid.uuid4().hex[:8]}"))
"""Module level, as a deployment needs: its process finds the agent by this name."""


async def test_to_deployment_works_from_async_code() -> None:
    # Prefect's own `to_deployment` returns a coroutine in async code ("'coroutine' object has no attribute ...").
    deployment = DEPLOYED.to_deployment("from-async", parameters={"user_prompt": "go"})
    assert deployment.name == "from-async"
    assert deployment.entrypoint is not None and deployment.entrypoint.endswith(":DEPLOYED.flow")
    assert deployment.parameters == {"user_prompt": "go"}


def _failing_once(name: str, tmp_path: Path) -> tuple[PrefectAgent[None, str], list[bool]]:
    fail = [True]
    agent: Agent[None, str] = Agent(tool_loop_model(1, counter=CallCounter(tmp_path / "model.log")), name=name)

    @agent.tool_plain
    def step(i: int) -> str:
        with (tmp_path / "tools.log").open("a") as f:
            f.write(f"{i}\n")
        if fail[0]:
            raise RuntimeError("provider down")
        return f"r{i}"

    return PrefectAgent(agent), fail


async def test_a_failed_run_started_with_usage_goes_on_in_the_same_flow_run(tmp_path: Path) -> None:
    # `RunUsage` is callable, so it was taken for an argument that is not data, and resume() refused the run.
    name = f"usage_{uuid.uuid4().hex[:8]}"
    prefect_agent, fail = _failing_once(name, tmp_path)
    with pytest.raises(RuntimeError, match="provider down"):
        await prefect_agent.run("go", run_id="u", usage=RunUsage(requests=1, input_tokens=5))
    [flow_run] = await flow_runs_of(name)

    fail[0] = False
    result = await prefect_agent.resume(flow_run.id)
    assert result.output == "done: r0"
    assert lines(tmp_path / "model.log") == ["model:0", "model:1"]
    assert result.usage.requests == 3  # the one passed in, and the two of this run


async def test_a_run_whose_usage_arguments_are_json_parameters_runs_and_resumes(tmp_path: Path) -> None:
    # A deployment passes its parameters as JSON data: they used to reach pydantic-ai as dicts
    # ("'dict' object has no attribute ..."), on the first start and on every resume.
    name = f"usage_json_{uuid.uuid4().hex[:8]}"
    prefect_agent, fail = _failing_once(name, tmp_path)
    with pytest.raises(RuntimeError, match="provider down"):
        await prefect_agent.flow(user_prompt="go", usage_limits={"request_limit": 10}, usage={"requests": 1})
    [flow_run] = await flow_runs_of(name)

    fail[0] = False
    result = await prefect_agent.resume(flow_run.id)
    assert result.output == "done: r0"
    assert result.usage.requests == 3
    assert lines(tmp_path / "model.log") == ["model:0", "model:1"]


async def test_json_parameters_of_the_wrong_shape_are_a_typed_error_before_the_model_is_asked(tmp_path: Path) -> None:
    name = f"usage_bad_{uuid.uuid4().hex[:8]}"
    prefect_agent, _ = _failing_once(name, tmp_path)
    with pytest.raises(InvalidRunInputError, match=r"`usage_limits`.*Fix: pass the JSON form"):
        await prefect_agent.flow(user_prompt="go", usage_limits={"request_limit": "ten"})
    assert lines(tmp_path / "model.log") == []


async def test_a_run_whose_arguments_are_over_the_servers_parameter_limit_starts_and_resumes(tmp_path: Path) -> None:
    name = f"big_{uuid.uuid4().hex[:8]}"
    prefect_agent, fail = _failing_once(name, tmp_path)
    prompt = "go " + "x" * 700_000  # the server refuses flow run parameters over 512 KB
    with pytest.raises(RuntimeError, match="provider down"):
        await prefect_agent.run(prompt, run_id="big")
    [flow_run] = await flow_runs_of(name)
    assert len(flow_run.parameters[RUN_ARGS_PARAMETER]) < 1_000  # a reference to the frame in result storage

    fail[0] = False
    result = await prefect_agent.resume(flow_run.id)
    assert result.output == "done: r0"
    assert lines(tmp_path / "model.log") == ["model:0", "model:1"]
    first = result.all_messages()[0]
    assert isinstance(first, ModelRequest) and isinstance(first.parts[-1], UserPromptPart)
    assert first.parts[-1].content == prompt
