"""A worker process for the sub-agent crash test: `python -m tests.temporal.delegation_worker <address> <queue>`.

With `DURABLE_AGENTS_CRASH=<label>@<n>` set it kills itself when that unit starts (exit code 86).
"""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin
from durable_agents.testing import inject_crash
from tests.temporal.delegation_workflows import BOOKING, BookingWorkflow


async def main(address: str, task_queue: str) -> None:
    inject_crash()
    client = await Client.connect(address, plugins=[DurableAgentsPlugin()])
    async with Worker(
        client, task_queue=task_queue, workflows=[BookingWorkflow], plugins=[DurableAgentsPlugin(BOOKING)]
    ):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
