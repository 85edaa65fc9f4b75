"""Waiting for a person, on Prefect: a tool that needs approval waits in its flow run for a yes.

The agent's `delete_file` tool requires approval. `RequestInput` hands a token to `ask` (here it
prints the request; an application would post the token to a chat or a ticket), and the flow run
waits. Anyone with the token answers from any process with `resolve_external_event` (here: this
script, once the run has asked). A second answer is ignored.

Start a server first (`prefect server start`) and point the script at it
(`export PREFECT_API_URL=http://127.0.0.1:4200/api`), then run
`python examples/prefect_approval.py`.
"""

import asyncio
import sys

from prefect.settings import get_current_settings
from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.models.test import TestModel
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults

from durable_agents import resolve_external_event
from durable_agents.prefect import PrefectAgent

pending: asyncio.Queue[tuple[str, DeferredToolRequests]] = asyncio.Queue()


async def ask(ctx: RunContext[None], requests: DeferredToolRequests, token: str) -> None:
    """Runs once per wait, in a task whose result is stored: a resumed run does not ask again."""
    print("approval needed for:", ", ".join(f"{c.tool_name}({c.args})" for c in requests.approvals))
    await pending.put((token, requests))


# TestModel needs no API key: it calls every tool once, then answers with what they returned.
agent = Agent(TestModel(), name="janitor", deps_type=type(None), capabilities=[RequestInput(ask)])


@agent.tool_plain(requires_approval=True)
def delete_file(path: str) -> str:
    """Delete a file; a person approves each call first."""
    return f"deleted {path}"


prefect_agent = PrefectAgent(agent)


async def main() -> None:
    """Start a run, answer its approval request as a person would, and print the output."""
    if not get_current_settings().api.url:  # without a server, Prefect would start a temporary one
        sys.exit("Set PREFECT_API_URL to a running server's API (`prefect server start`).")
    run = asyncio.create_task(prefect_agent.run("Clean up"))
    asked = asyncio.ensure_future(pending.get())
    await asyncio.wait({run, asked}, return_when=asyncio.FIRST_COMPLETED)
    if not asked.done():  # the run ended without asking: show why
        asked.cancel()
        sys.exit(f"the run ended without asking: {run.result().output!r}")
    # In an application, another process answers, e.g. a web endpoint that got the token.
    token, requests = asked.result()
    decision = DeferredToolResults(
        approvals={call.tool_call_id: True for call in requests.approvals}
    )
    print("delivered:", await resolve_external_event(token, decision))
    print("second answer delivered:", await resolve_external_event(token, decision))
    result = await run
    print("output:", result.output)


if __name__ == "__main__":
    asyncio.run(main())
