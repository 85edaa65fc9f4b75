"""A real MCP server (stdio) through the unit contract: listed once per run in a unit, called in units."""

from __future__ import annotations

from pathlib import Path

from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from durable_agents.local import LocalAgent
from durable_agents.testing import record_units

SERVER = Path(__file__).with_name("mcp_server.py")


def plan(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    returns = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
    if not returns:
        return ModelResponse(parts=[ToolCallPart("add", {"a": 2, "b": 3}), ToolCallPart("broken", {})])
    tools = ",".join(sorted(t.name for t in info.function_tools))
    return ModelResponse(parts=[TextPart(f"{tools}|" + "|".join(f"{p.tool_name}={p.content}" for p in returns))])


async def test_mcp_toolset_listing_and_calls_are_units() -> None:
    agent = Agent(
        FunctionModel(plan), name="mcp", toolsets=[MCPToolset(SERVER, id="calc", init_timeout=60, read_timeout=60)]
    )
    bare = await agent.run("go")
    with record_units() as units:
        result = await LocalAgent(agent).run("go")
    assert result.output == bare.output
    assert result.output.startswith("add,broken|add=5|broken=")
    assert "this tool is broken" in result.output
    assert units.labels[0] == "mcp.toolset.calc.list"
    assert units.kinds.count("list") == 1  # listed once per run, not once per model request
    assert sorted(units.labels[2:4]) == ["mcp.toolset.calc.call/add", "mcp.toolset.calc.call/broken"]
    assert units.kinds.count("model") == 2
