"""A typo in a run argument: pyright must report `dep=` (tests/test_typing.py expects exactly that error)."""

# pyright: strict

from __future__ import annotations

from dataclasses import dataclass

from pydantic_ai import Agent

from durable_agents.dbos import DBOSAgent


@dataclass
class MyDeps:
    user_id: int


dbos_agent = DBOSAgent(Agent("test", name="typo", deps_type=MyDeps))


async def typo() -> None:
    await dbos_agent.run("x", dep=MyDeps(1))
