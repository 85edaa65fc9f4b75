"""An agent's fingerprint changes with what a recorded run depends on, and only with that."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic_ai import Agent

from durable_agents import DurableAgent, durable
from durable_agents._fingerprint import code_fingerprint
from durable_agents.testing import tool_loop_model


class Answer(BaseModel):
    text: str


class Verdict(BaseModel):
    ok: bool


def lookup(i: int) -> str:
    """Look a thing up."""
    return f"r{i}"


def lookup_changed(i: int) -> str:
    """Look a thing up."""
    return f"R{i}"


def build(
    *, tool: Callable[[int], str] = lookup, instructions: str = "Be brief.", output_type: Any = str, **agent: Any
) -> DurableAgent[Any, Any]:
    agent.setdefault("model", tool_loop_model(1))
    plain = Agent(name="fp", instructions=instructions, output_type=output_type, **agent)
    plain.tool_plain(name="lookup")(tool)
    wrapped = durable(plain, engine="local")
    assert isinstance(wrapped, DurableAgent)
    return wrapped


def test_the_same_agent_built_twice_has_the_same_fingerprint() -> None:
    assert build().fingerprint() == build().fingerprint()
    assert build(output_type=Answer).fingerprint() == build(output_type=Answer).fingerprint()


def test_what_a_recorded_run_depends_on_changes_it() -> None:
    base = build().fingerprint()
    changed = {
        "tool body": build(tool=lookup_changed),
        "instructions": build(instructions="Be thorough."),
        "output type": build(output_type=Answer),
        "system prompt": build(system_prompt="You are terse."),
        "model": build(model="test"),
    }
    fingerprints = {what: agent.fingerprint() for what, agent in changed.items()}
    assert base not in fingerprints.values()
    assert len(set(fingerprints.values())) == len(fingerprints)
    assert build(output_type=Answer).fingerprint() != build(output_type=Verdict).fingerprint()


def test_code_without_source_is_fingerprinted_by_its_bytecode_not_its_location() -> None:
    def compiled(body: str, filename: str) -> Callable[..., Any]:
        namespace: dict[str, Any] = {}
        exec(compile(f"def f(x):\n    return {body}\n", filename, "exec"), namespace)
        return namespace["f"]

    same_here = code_fingerprint(compiled("x in {'a', 'b'}", "<one>"))
    same_there = code_fingerprint(compiled("x in {'a', 'b'}", "<two>"))
    assert same_here == same_there
    assert code_fingerprint(compiled("x + 2", "<one>")) != same_here
