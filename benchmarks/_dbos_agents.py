"""DBOS: the agents (ours, pydantic-ai's, pydantic-ai's with `@DBOS.step` tools) and the floor workflows.

Everything here registers DBOS functions, so it is imported once, before `DBOS.launch()`.
"""

from __future__ import annotations

import asyncio
import warnings

from dbos import DBOS

from durable_agents.dbos import DBOSAgent

from ._common import Workload, build_agent, step
from ._workloads import RECOVERY_WORKLOAD, EnvCounter, all_workloads

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pydantic_ai.durable_exec.dbos import DBOSAgent as PaiDBOSAgent

APP_VERSION = "durable-agents-bench"
NOOP_PAYLOAD = b"x" * 64


def dbos_config(url: str) -> dict[str, object]:
    return {
        "name": "durable-agents-bench",
        "system_database_url": url,
        "application_version": APP_VERSION,
        "log_level": "WARNING",
    }


@DBOS.step(name="bench.noop")
async def noop(payload: bytes) -> bytes:
    """The floor's unit: does nothing."""
    return payload


@DBOS.workflow(name="bench.floor")
async def floor_workflow(plan: list[int]) -> int:
    done = 0
    for n in plan:
        done += len(await asyncio.gather(*(noop(NOOP_PAYLOAD) for _ in range(n))))
    return done


async def _user_step(i: int) -> str:
    return await step(i)


# What pydantic-ai's DBOS docs ask users to do for a tool to be journaled: decorate it as a step. A function of its
# own: DBOS tags the function it decorates, and our DBOSAgent runs tagged functions as their own steps.
journaled_step = DBOS.step(name="bench.step")(_user_step)


def floor_plan(w: Workload, *, tools: bool = True) -> list[int]:
    plan: list[int] = []
    for _ in range(w.k):
        plan += [1, w.parallel] if tools else [1]
    return [*plan, 1]


WORKLOADS = {w.key: w for w in all_workloads()}
PLAIN = {key: build_agent(f"plain_{key}", w) for key, w in WORKLOADS.items()}
OURS = {key: DBOSAgent(build_agent(f"ours_{key}", w)) for key, w in WORKLOADS.items()}
OURS["recovery"] = DBOSAgent(build_agent("ours_recovery", RECOVERY_WORKLOAD, counter=EnvCounter()))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    PAI = {key: PaiDBOSAgent(build_agent(f"pai_{key}", w)) for key, w in WORKLOADS.items()}
    PAI_STEPS = {
        key: PaiDBOSAgent(build_agent(f"pai_steps_{key}", w, tool=journaled_step)) for key, w in WORKLOADS.items()
    }
    PAI["recovery"] = PaiDBOSAgent(build_agent("pai_recovery", RECOVERY_WORKLOAD, counter=EnvCounter()))
    PAI_STEPS["recovery"] = PaiDBOSAgent(
        build_agent("pai_steps_recovery", RECOVERY_WORKLOAD, counter=EnvCounter(), tool=journaled_step)
    )
