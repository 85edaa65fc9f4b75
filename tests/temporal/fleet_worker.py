"""One worker of a fleet: `python -m tests.temporal.fleet_worker <address> <task queue> workflows|activities`.

`workflows` runs the test workflows and no activities; `activities` runs every test agent's activities and no
workflows. Several of them on one task queue make a fleet in which a run's activities land on processes that do not
hold its workflow, and not always on the same one. Prints `ready` once polling.
"""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin
from tests.temporal import workflows as w


async def main(address: str, task_queue: str, mode: str) -> None:
    # The client's plugin (converter, sandbox pass-through, failure types) configures the worker too; the activities
    # worker adds the agents. Giving the workflows worker another agent-less plugin would only repeat the client's.
    client = await Client.connect(address, plugins=[DurableAgentsPlugin()])
    if mode == "workflows":
        # Some workflows declare their agents, which registers those agents' activities here too: without
        # `no_remote_activities` this worker would take activity tasks of every agent and fail the undeclared ones.
        worker = Worker(client, task_queue=task_queue, workflows=w.ALL_WORKFLOWS, no_remote_activities=True)
    elif mode == "activities":
        worker = Worker(client, task_queue=task_queue, plugins=[DurableAgentsPlugin(*w.ALL_AGENTS)])
    else:
        raise SystemExit(f"unknown mode {mode!r}: use 'workflows' or 'activities'")
    async with worker:
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
