"""Agents and a workflow that wait for external events (kept free of test-only imports: the sandbox re-imports it).

Each run gets a folder (its prompt and deps), where the model counts its requests (`model`), `ask` writes the
token (`token`) and counts its calls (`asked`), and the approved tool records its calls (`ran`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import RequestInput
from pydantic_ai.exceptions import UserError
from pydantic_ai.external_events import wait_for_external_event
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import DeferredToolRequests
from temporalio import workflow

from durable_agents.temporal import ActivityConfig, TemporalAgent


def _note(folder: str, name: str, line: str) -> None:
    with (Path(folder) / name).open("a") as f:
        f.write(line + "\n")


def _publish(folder: str, token: str) -> None:
    """Write the token where the test reads it, whole: a reader never sees the file half written."""
    (Path(folder) / "token.tmp").write_text(token)
    (Path(folder) / "token.tmp").replace(Path(folder) / "token")


def _folder(messages: list[ModelMessage]) -> str:
    first = messages[0]
    assert isinstance(first, ModelRequest)
    prompt = first.parts[-1]
    assert isinstance(prompt, UserPromptPart) and isinstance(prompt.content, str)
    return prompt.content


def _model(tool: str):
    """Calls `tool` once, then answers with what it returned. Counts its requests in the run's folder."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        _note(_folder(messages), "model", "request")
        returns = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
        if not returns:
            return ModelResponse(parts=[ToolCallPart(tool, {"path": "a"}, tool_call_id="call-1")])
        return ModelResponse(parts=[TextPart(f"done: {returns[-1].model_response_str()}")])

    return FunctionModel(respond)


async def ask_approval(ctx: RunContext[str], requests: DeferredToolRequests, token: str) -> None:
    _note(ctx.deps, "asked", token)
    _publish(ctx.deps, token)


async def ask_nobody(ctx: RunContext[str], requests: DeferredToolRequests, token: str) -> None:
    _note(ctx.deps, "asked", token)
    raise UserError("no inbox is configured")


def _approval_agent(name: str, timeout: timedelta | None, ask: Any = ask_approval) -> Agent[str, str]:
    agent = Agent(_model("delete"), name=name, deps_type=str, capabilities=[RequestInput(ask, timeout=timeout)])

    @agent.tool(requires_approval=True)
    async def delete(ctx: RunContext[str], path: str) -> str:
        _note(ctx.deps, "ran", path)
        return f"deleted {path}"

    return agent


# Short activity timeouts: a killed worker's activities are retried soon.
_QUICK = ActivityConfig(start_to_close_timeout=timedelta(seconds=5))
approval_agent = TemporalAgent(_approval_agent("ext_approval", None), activity_config=_QUICK)
timeout_agent = TemporalAgent(_approval_agent("ext_timeout", timedelta(seconds=1)), activity_config=_QUICK)
broken_agent = TemporalAgent(_approval_agent("ext_broken", None, ask_nobody), activity_config=_QUICK)

human_base = Agent(_model("ask_human"), name="ext_human", deps_type=str)


@human_base.tool
async def ask_human(ctx: RunContext[str], path: str) -> str:
    folder = ctx.deps

    async def ask(token: str) -> None:
        _note(folder, "asked", token)
        _publish(folder, token)

    answer = await wait_for_external_event("human", ask=ask)
    return f"human said {answer}"


human_agent = TemporalAgent(human_base, tool_activity_config={"ask_human": None}, activity_config=_QUICK)

EVENT_AGENTS = [approval_agent, timeout_agent, broken_agent, human_agent]


@workflow.defn
class EventWorkflow:
    """Runs one of the agents above by name, with the run's folder as prompt and deps."""

    @workflow.run
    async def run(self, name: str, folder: str) -> str:
        agent = {a.name: a for a in EVENT_AGENTS}[name]
        return (await agent.run(folder, deps=folder)).output
