"""A worker process with workflows only, no activities: `python -m tests.temporal.workflow_worker <address> <queue>`.

The tests start it without model credentials, to show that workflow code never builds a model.
"""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin
from durable_agents.temporal._plugin import AGENTS_ATTR
from tests.temporal import workflows as w


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address, plugins=[DurableAgentsPlugin()])
    # The plugin registers the activities of agents a workflow class declares: leave those workflows out, or this
    # worker would also poll activity tasks (and take ones of agents it lacks).
    workflows = [cls for cls in w.ALL_WORKFLOWS if not getattr(cls, AGENTS_ATTR, ())]
    async with Worker(client, task_queue=task_queue, workflows=workflows):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
