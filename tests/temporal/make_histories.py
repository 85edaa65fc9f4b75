"""Record the workflow histories that the replay test replays: `python -m tests.temporal.make_histories`.

Rerun it after a deliberate change to what the workflows schedule, and commit the JSON files.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from durable_agents.temporal import DurableAgentsPlugin
from tests.temporal import workflows as w

HISTORIES = Path(__file__).parent / "histories" / "v1"

# (file name, workflow run method, argument)
RECORDINGS = (
    ("loop", w.LoopWorkflow.run, "go"),
    ("parallel", w.ParallelWorkflow.run, "go"),
    ("handler", w.AgentWorkflow.run, "handler"),
)


async def record() -> None:
    temporal = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal, dev_server_log_level="error"
    ) as env:
        client = await Client.connect(env.client.service_client.config.target_host, plugins=[DurableAgentsPlugin()])
        async with Worker(
            client, task_queue="record", workflows=w.ALL_WORKFLOWS, plugins=[DurableAgentsPlugin(*w.ALL_AGENTS)]
        ):
            for name, run, arg in RECORDINGS:
                handle = await client.start_workflow(run, arg, id=f"replay-{name}", task_queue="record")  # type: ignore[arg-type]
                await handle.result()
                history = await handle.fetch_history()
                (HISTORIES / f"{name}.json").write_text(history.to_json())
                print(f"wrote {name}.json ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(record())
    # temporalio can abort at interpreter exit after all work succeeded (sdk-python#300); leave cleanly.
    sys.stdout.flush()
    os._exit(0)
