"""Temporal: the agents (ours and pydantic-ai's), the floor activity and the workflows that run them.

Workers pass the `benchmarks` package through the workflow sandbox, so these agents are built once per
process for both wrappers alike (no per-run re-import).
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta

from pydantic_ai.usage import UsageLimits
from temporalio import activity, workflow

from durable_agents.temporal import ActivityConfig, TemporalAgent

from ._common import Workload, build_agent
from ._workloads import RECOVERY_WORKLOAD, EnvCounter, all_workloads

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pydantic_ai.durable_exec.temporal import TemporalAgent as PaiTemporalAgent

WORKLOADS = {w.key: w for w in all_workloads()}
PLAIN = {key: build_agent(f"plain_{key}", w) for key, w in WORKLOADS.items()}
OURS = {key: TemporalAgent(build_agent(f"ours_{key}", w)) for key, w in WORKLOADS.items()}
# The same, with every tool call a local activity (no server round trip per tool call).
OURS_LOCAL = {
    key: TemporalAgent(build_agent(f"ourslocal_{key}", w), local_activity_tools="all") for key, w in WORKLOADS.items()
}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    PAI = {key: PaiTemporalAgent(build_agent(f"pai_{key}", w)) for key, w in WORKLOADS.items()}

# Recovery: a crashed worker's in-flight activity is retried once its start_to_close_timeout expires.
RECOVERY_TIMEOUT = timedelta(seconds=2)
OURS["recovery"] = TemporalAgent(
    build_agent("ours_recovery", RECOVERY_WORKLOAD, counter=EnvCounter()),
    activity_config=ActivityConfig(start_to_close_timeout=RECOVERY_TIMEOUT),
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    PAI["recovery"] = PaiTemporalAgent(
        build_agent("pai_recovery", RECOVERY_WORKLOAD, counter=EnvCounter()),
        activity_config=ActivityConfig(start_to_close_timeout=RECOVERY_TIMEOUT),
    )

NOOP_PAYLOAD = b"x" * 64
# K=64 makes 65 model requests: over pydantic-ai's default request limit of 50.
LIMITS = UsageLimits(request_limit=200)


@activity.defn(name="bench.noop")
async def noop(payload: bytes) -> bytes:
    """The floor's unit: does nothing."""
    return payload


def floor_plan(w: Workload) -> list[int]:
    """Groups of units run one group after another: a model unit, then its tool calls in parallel."""
    plan: list[int] = []
    for _ in range(w.k):
        plan += [1, w.parallel]
    return [*plan, 1]


@workflow.defn(name="BenchOurs")
class OursWorkflow:
    @workflow.run
    async def run(self, key: str) -> str:
        return (await OURS[key].run("go", usage_limits=LIMITS)).output


@workflow.defn(name="BenchOursLocal")
class OursLocalWorkflow:
    @workflow.run
    async def run(self, key: str) -> str:
        return (await OURS_LOCAL[key].run("go", usage_limits=LIMITS)).output


@workflow.defn(name="BenchPai")
class PaiWorkflow:
    @workflow.run
    async def run(self, key: str) -> str:
        return (await PAI[key].run("go", usage_limits=LIMITS)).output


@workflow.defn(name="BenchFloor")
class FloorWorkflow:
    @workflow.run
    async def run(self, plan: list[int]) -> int:
        done = 0
        for n in plan:
            results = await asyncio.gather(
                *(
                    workflow.execute_activity(
                        "bench.noop", NOOP_PAYLOAD, result_type=bytes, start_to_close_timeout=timedelta(seconds=60)
                    )
                    for _ in range(n)
                )
            )
            done += len(results)
        return done


def pai_activities() -> list[object]:
    return [fn for agent in PAI.values() for fn in agent.temporal_activities]
