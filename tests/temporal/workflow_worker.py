"""A worker process with workflows only, no activities: `python -m tests.temporal.workflow_worker <address> <queue>`.

The tests start it without model credentials, to show that workflow code never builds a model.
"""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin
from tests.temporal import workflows as w


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address, plugins=[DurableAgentsPlugin()])
    async with Worker(client, task_queue=task_queue, workflows=w.ALL_WORKFLOWS):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
