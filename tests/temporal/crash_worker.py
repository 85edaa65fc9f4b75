"""A worker process for crash tests: `python -m tests.temporal.crash_worker <address> <task queue> [role]`.

With `DURABLE_AGENTS_CRASH=<label>@<n>` set it kills itself when that unit starts (exit code 86). It also runs the
workflow of the external-event tests, which kill it while a run waits. The role is `all` (the default: workflows and
activities), `workflows` (workflows only) or `activities` (the crash agent's activities only). With
`DURABLE_AGENTS_TEST_SPANS` set it appends every span it ends to that file (see `tests/telemetry_support.py`).
"""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin
from durable_agents.temporal._plugin import AGENTS_ATTR
from durable_agents.testing import inject_crash
from tests.telemetry_support import install_file_exporter
from tests.temporal import event_workflows as ew
from tests.temporal import workflows as w


def _worker(client: Client, task_queue: str, role: str) -> Worker:
    if role == "workflows":
        # The plugin registers the activities of agents a workflow class declares: leave those workflows out.
        workflows = [cls for cls in w.ALL_WORKFLOWS if not getattr(cls, AGENTS_ATTR, ())]
        return Worker(client, task_queue=task_queue, workflows=workflows)
    if role == "activities":
        return Worker(client, task_queue=task_queue, activities=w.crash_agent.temporal_activities)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[*w.ALL_WORKFLOWS, ew.EventWorkflow],
        plugins=[DurableAgentsPlugin(*w.ALL_AGENTS, *ew.EVENT_AGENTS)],
    )


async def main(address: str, task_queue: str, role: str) -> None:
    install_file_exporter()
    inject_crash()
    client = await Client.connect(address, plugins=[DurableAgentsPlugin()])
    async with _worker(client, task_queue, role):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "all"))
