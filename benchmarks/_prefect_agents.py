"""Prefect: the agents (ours and pydantic-ai's) and the floor flow. Import after the Prefect env is set."""

from __future__ import annotations

import asyncio
import warnings

from prefect import flow, task

from durable_agents.prefect import PrefectAgent

from ._common import Workload, build_agent
from ._workloads import RECOVERY_WORKLOAD, EnvCounter, all_workloads

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pydantic_ai.durable_exec.prefect import PrefectAgent as PaiPrefectAgent

NOOP_PAYLOAD = b"x" * 64


@task(name="bench.noop")
async def noop(payload: bytes) -> bytes:
    """The floor's unit: does nothing."""
    return payload


@flow(name="bench.floor")
async def floor_flow(plan: list[int]) -> int:
    done = 0
    for n in plan:
        done += len(await asyncio.gather(*(noop(NOOP_PAYLOAD) for _ in range(n))))
    return done


persisted_noop = noop.with_options(name="bench.noop_persisted", persist_result=True)


@flow(name="bench.floor_persisted")
async def floor_persisted_flow(plan: list[int]) -> int:
    """The floor with results persisted, as `PrefectAgent` does so that `resume` can skip completed tasks."""
    done = 0
    for n in plan:
        done += len(await asyncio.gather(*(persisted_noop(NOOP_PAYLOAD) for _ in range(n))))
    return done


def floor_plan(w: Workload) -> list[int]:
    plan: list[int] = []
    for _ in range(w.k):
        plan += [1, w.parallel]
    return [*plan, 1]


WORKLOADS = {w.key: w for w in all_workloads()}
PLAIN = {key: build_agent(f"plain_{key}", w) for key, w in WORKLOADS.items()}
OURS = {key: PrefectAgent(build_agent(f"ours_{key}", w)) for key, w in WORKLOADS.items()}
OURS["recovery"] = PrefectAgent(build_agent("ours_recovery", RECOVERY_WORKLOAD, counter=EnvCounter()))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    PAI = {key: PaiPrefectAgent(build_agent(f"pai_{key}", w)) for key, w in WORKLOADS.items()}
