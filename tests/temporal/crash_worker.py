"""A worker process for crash tests: `python -m tests.temporal.crash_worker <address> <task queue>`.

With `DURABLE_AGENTS_CRASH=<label>@<n>` set it kills itself when that unit starts (exit code 86). It also runs the
workflow of the external-event tests, which kill it while a run waits.
"""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin
from durable_agents.testing import inject_crash
from tests.temporal import event_workflows as ew
from tests.temporal import workflows as w


async def main(address: str, task_queue: str) -> None:
    inject_crash()
    client = await Client.connect(address, plugins=[DurableAgentsPlugin()])
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[*w.ALL_WORKFLOWS, ew.EventWorkflow],
        plugins=[DurableAgentsPlugin(*w.ALL_AGENTS, *ew.EVENT_AGENTS)],
    ):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
