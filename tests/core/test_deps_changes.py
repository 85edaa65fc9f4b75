"""Changes tools make to the run's deps are carried back from their units (see `DepsCodec.apply`), on the local
engine; the parity tests run the data-analyst example and a dataclass on every engine."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent, RunContext

from durable_agents.exceptions import UnserializableDepsError
from durable_agents.local import LocalAgent
from durable_agents.testing import tool_loop_model


class Notes(BaseModel):
    seen: list[int] = []
    last: str = ""
    count: int = 0


def _agent(deps_type: type[Any], rounds: int = 2, parallel: int = 1) -> Agent[Any, str]:
    return Agent(tool_loop_model(rounds, parallel=parallel), name="deps", deps_type=deps_type)


async def test_a_pydantic_model_and_the_callers_object_get_each_change() -> None:
    agent = _agent(Notes)

    @agent.tool
    def step(ctx: RunContext[Notes], i: int) -> str:
        ctx.deps.seen.append(i)
        ctx.deps.last = f"step {i} after {ctx.deps.seen[:-1]}"
        return f"r{i}"

    deps = Notes()
    assert (await LocalAgent(agent).run("go", deps=deps)).output == "done: r0, r1"
    assert deps == Notes(seen=[0, 1], last="step 1 after [0]")


async def test_parallel_calls_that_change_different_keys_of_a_dict_both_keep_their_change() -> None:
    agent = _agent(dict[str, int], rounds=1, parallel=3)

    @agent.tool
    def step(ctx: RunContext[dict[str, int]], i: int) -> str:
        ctx.deps[f"k{i}"] = i
        del ctx.deps["gone"]
        return f"r{i}"

    deps = {"gone": 1, "kept": 7}
    await LocalAgent(agent).run("go", deps=deps)
    assert deps == {"kept": 7, "k0": 0, "k1": 1, "k2": 2}


async def test_a_change_that_does_not_validate_as_the_field_type_fails_naming_the_field() -> None:
    agent = _agent(Notes, rounds=1)

    @agent.tool
    def step(ctx: RunContext[Notes], i: int) -> str:
        ctx.deps.count = "many"  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]
        return "r"

    with pytest.raises(UnserializableDepsError, match=r"Tool 'step'.*`deps\.count` no longer validates"):
        await LocalAgent(agent).run("go", deps=Notes())


async def test_a_change_to_deps_whose_fields_cannot_be_set_fails_typed() -> None:
    agent = _agent(tuple[list[int], ...], rounds=1)

    @agent.tool
    def step(ctx: RunContext[tuple[list[int], ...]], i: int) -> str:
        ctx.deps[0].append(i)
        return "r"

    with pytest.raises(UnserializableDepsError, match="tuple, whose fields the run cannot update"):
        await LocalAgent(agent).run("go", deps=([],))
