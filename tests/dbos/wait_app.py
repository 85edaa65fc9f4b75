"""A DBOS app whose run waits for an approval, for the external-event tests, run in subprocesses.

`python wait_app.py <mode> <db url> <arg> [<arg>]`:

- `run <url> <workflow id> <dir>`: run the agent with that `run_id` (crashes where `DURABLE_AGENTS_CRASH` says);
- `resume <url> <workflow id> <dir>`: launch DBOS, which recovers this executor's pending runs, and wait for the
  run's result;
- `resolve <url> <token> <payload JSON>` / `fail <url> <token> <reason>`: answer a wait from a process that has
  not launched DBOS, with `system_database_url=`.

The agent asks to `delete(path='a')`, a tool that requires approval; `RequestInput` asks for the decision. `ask`
appends the token to `<dir>/asks` and writes the pending requests to `<dir>/requests.json`; the model counts its
requests in `<dir>/model_calls`, the tool its executions in `<dir>/tool_calls`. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from dbos import DBOS
from pydantic import TypeAdapter
from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import DeferredToolRequests

import durable_agents
from durable_agents.dbos import DBOSAgent
from durable_agents.testing import CallCounter, inject_crash

REQUESTS = TypeAdapter(DeferredToolRequests)


def build_agent(
    workdir: Path, name: str = "approver", *, timeout: timedelta | None = None, deferred: bool = False
) -> Agent[None, Any]:
    """The agent under test: one call of `delete(path='a')`, which needs approval, then an answer with its result.

    `deferred=True` leaves out `RequestInput`: the run ends with `DeferredToolRequests` instead of waiting.
    """
    counter = CallCounter(workdir / "model_calls")

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        counter.bump(f"model:{len(counter.calls)}")
        returns = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
        if not returns:
            return ModelResponse(parts=[ToolCallPart("delete", {"path": "a"}, tool_call_id="call-1")])
        return ModelResponse(parts=[TextPart(f"done: {returns[-1].model_response_str()}")])

    async def ask(ctx: RunContext[None], requests: DeferredToolRequests, token: str) -> None:
        (workdir / "requests.json").write_bytes(REQUESTS.dump_json(requests))
        with (workdir / "asks").open("a") as f:
            f.write(token + "\n")

    if deferred:
        agent = Agent(FunctionModel(respond), name=name, output_type=[str, DeferredToolRequests])
    else:
        agent = Agent(FunctionModel(respond), name=name, capabilities=[RequestInput(ask, timeout=timeout)])

    @agent.tool_plain(requires_approval=True)
    def delete(path: str) -> str:
        with (workdir / "tool_calls").open("a") as f:
            f.write(path + "\n")
        return f"deleted {path}"

    return agent


def main() -> None:
    mode, url, arg = sys.argv[1:4]
    if mode in ("resolve", "fail"):
        if mode == "resolve":
            answer = durable_agents.resolve_external_event(arg, json.loads(sys.argv[4]), system_database_url=url)
        else:
            answer = durable_agents.fail_external_event(arg, sys.argv[4], system_database_url=url)
        print(json.dumps({"delivered": asyncio.run(answer)}))
        return
    workdir = Path(sys.argv[4])
    dbos_agent = DBOSAgent(build_agent(workdir))
    config = {
        "name": "durable-agents-wait",
        "system_database_url": url,
        "application_version": "wait-test",
        "executor_id": "local",
        "log_level": "WARNING",
    }
    DBOS(config=config)  # type: ignore[arg-type]
    inject_crash()
    DBOS.launch()
    if mode == "run":
        output = asyncio.run(dbos_agent.run("go", run_id=arg)).output
    else:
        output = DBOS.retrieve_workflow(arg).get_result().output
    print(json.dumps({"output": output}), flush=True)
    DBOS.destroy()


if __name__ == "__main__":
    main()
