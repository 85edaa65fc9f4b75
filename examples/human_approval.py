"""A DBOS run that waits for a person to approve a tool call, then goes on with the decision.

`RequestInput` hands the pending call and a token to `ask`, which would post them to Slack or
a ticket; here it hands them to `main`, which approves with `durable_agents.approve` (bound to
the call's arguments) and sends the decision with `resolve_external_event`, as an approval
endpoint in another process would (with `system_database_url=`). The wait is a DBOS message:
the run survives a restart while it waits.

Key-free (a scripted model). DBOS uses `DBOS_SYSTEM_DATABASE_URL`, or a SQLite file in a temp
directory. Run: `python examples/human_approval.py`.
"""

import asyncio
import os
import tempfile
import uuid
from pathlib import Path

from dbos import DBOS
from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import DeferredToolRequests

from durable_agents import approve, resolve_external_event
from durable_agents.dbos import DBOSAgent

pending: asyncio.Queue[tuple[str, DeferredToolRequests]] = asyncio.Queue()


def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Asks to delete a file, then reports what the tool said."""
    returns = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
    if not returns:
        return ModelResponse(parts=[ToolCallPart("delete_file", {"path": "old-report.txt"})])
    return ModelResponse(parts=[TextPart(f"Done: {returns[-1].content}")])


async def ask(ctx: RunContext[None], requests: DeferredToolRequests, token: str) -> None:
    """Runs once per wait, in a DBOS step: post the token where a person will see it."""
    await pending.put((token, requests))


agent = Agent(
    FunctionModel(model), name="janitor", deps_type=type(None), capabilities=[RequestInput(ask)]
)


@agent.tool_plain(requires_approval=True)
def delete_file(path: str) -> str:
    """Runs only once a person approved this very call."""
    return f"deleted {path}"


url = (
    os.environ.get("DBOS_SYSTEM_DATABASE_URL")
    or f"sqlite:///{Path(tempfile.mkdtemp()) / 'approval.sqlite'}"
)
DBOS(config={"name": "human-approval", "system_database_url": url, "log_level": "WARNING"})
dbos_agent = DBOSAgent(agent)
DBOS.launch()


async def main() -> None:
    """Start the run, answer its wait as a person would, and print the outcome."""
    run = asyncio.create_task(
        dbos_agent.run("Clean up old reports.", run_id=f"cleanup-{uuid.uuid4().hex[:8]}")
    )
    token, requests = await pending.get()
    for call in requests.approvals:
        print(f"approval needed: {call.tool_name}({call.args_as_json_str()})")
    print(f"token handed out: {token[:9]}...")
    # From any process: `resolve_external_event(token, decision, system_database_url=url)`.
    print("delivered:", await resolve_external_event(token, approve(requests)))
    print((await run).output)
    print("a second answer is ignored:", not await resolve_external_event(token, approve(requests)))


asyncio.run(main())
DBOS.destroy()
