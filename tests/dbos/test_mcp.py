"""A real stdio MCP server on DBOS: the tool list is a step (once per run), each call a step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from dbos import DBOS, SetWorkflowID
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from durable_agents.dbos import DBOSAgent

pytestmark = pytest.mark.dbos

SERVER = Path(__file__).parent.parent / "core" / "mcp_server.py"


def plan(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    returns = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
    if len(returns) < 2:
        return ModelResponse(parts=[ToolCallPart("add", {"a": len(returns), "b": 10})])
    return ModelResponse(parts=[TextPart(",".join(str(p.content) for p in returns))])


async def test_mcp_listing_and_calls_are_steps(launch_sqlite: Callable[[], None]) -> None:
    toolset = MCPToolset(SERVER, id="calc", init_timeout=60, read_timeout=60)
    agent = Agent(FunctionModel(plan), name="mcpdbos", toolsets=[toolset])
    dbos_agent = DBOSAgent(agent, mcp_step_config={"retries_allowed": False})
    launch_sqlite()
    with SetWorkflowID("mcp-run"):
        result = await dbos_agent.run("go")
    assert result.output == "10,11"
    steps = [s["function_name"] for s in await DBOS.list_workflow_steps_async("mcp-run")]
    list_, model, call = "mcpdbos.toolset.calc.list", "mcpdbos.model", "mcpdbos.toolset.calc.call/add"
    assert steps == [list_, model, call, model, call, model]
