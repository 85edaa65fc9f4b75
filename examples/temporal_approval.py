"""Waiting for a person on Temporal: a tool call waits in the workflow for an approval.

Start a dev server first (`temporal server start-dev`), then run
`python examples/temporal_approval.py`. It connects to `TEMPORAL_ADDRESS` (default
`localhost:7233`) and runs its own worker in this process.

`RequestInput` hands the pending calls and a token to `ask`, which would post them to a person
(here: a file, standing in for a Slack message or a database row). The workflow then waits,
holding no worker, until `resolve_external_event(token, ...)` answers it, from this or any other
process.
"""

import asyncio
import json
import os
import tempfile
import uuid
from pathlib import Path

from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.models.test import TestModel
from pydantic_ai.tools import DeferredToolRequests
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from durable_agents import resolve_external_event
from durable_agents.temporal import DurableAgentsPlugin, TemporalAgent, uses_agents


async def ask(ctx: RunContext[str], requests: DeferredToolRequests, token: str) -> None:
    """Hand the token to whoever decides; runs once, in a local activity."""
    calls = [call.tool_call_id for call in requests.approvals]
    inbox = Path(ctx.deps)
    draft = inbox / "request.tmp"
    draft.write_text(json.dumps({"token": token, "calls": calls}))
    draft.replace(inbox / "inbox.json")  # the request appears whole


agent = Agent(TestModel(), name="refunds", deps_type=str, capabilities=[RequestInput(ask)])


@agent.tool_plain(requires_approval=True)
async def refund(order: str) -> str:
    """Refund an order; runs only once a person approved the call."""
    return f"refunded order {order}"


temporal_agent = TemporalAgent(agent)


@uses_agents(temporal_agent)
@workflow.defn
class RefundWorkflow:
    """Runs the agent; its tool call waits in the workflow until someone approves it."""

    @workflow.run
    async def run(self, inbox: str) -> str:
        """Refund order 42, once approved; `inbox` is where `ask` leaves the request."""
        result = await temporal_agent.run("Refund order 42.", deps=inbox)
        return result.output


async def approve_when_asked(inbox: Path, client: Client) -> None:
    """The person's side: read the request, approve every call."""
    while not (inbox / "inbox.json").exists():
        await asyncio.sleep(0.1)
    request = json.loads((inbox / "inbox.json").read_text())
    approvals = dict.fromkeys(request["calls"], True)
    delivered = await resolve_external_event(
        request["token"], {"approvals": approvals}, client=client
    )
    print("approval delivered:", delivered)


async def main() -> None:
    """Start a worker and the workflow, then approve as a person would."""
    address = os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    client = await Client.connect(address, plugins=[DurableAgentsPlugin()])
    with tempfile.TemporaryDirectory() as inbox:
        task_queue = f"refunds-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=task_queue, workflows=[RefundWorkflow]):
            handle = await client.start_workflow(
                RefundWorkflow.run, inbox, id=task_queue, task_queue=task_queue
            )
            await approve_when_asked(Path(inbox), client)
            print(await handle.result())


if (
    __name__ == "__main__"
):  # the workflow sandbox re-imports this module: keep side effects behind the guard
    asyncio.run(main())
