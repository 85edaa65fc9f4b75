"""Scripted models for demos and tests, built on pydantic-ai's `FunctionModel`: no API key, no network."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

__all__ = ["CallCounter", "tool_loop_model"]


class CallCounter:
    """Counts model requests in a file, so a count survives the process (crash tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def bump(self, label: str) -> None:
        """Record one request."""
        with self.path.open("a") as f:
            f.write(label + "\n")

    @property
    def calls(self) -> list[str]:
        """Every request recorded, oldest first."""
        if not self.path.exists():
            return []
        return self.path.read_text().splitlines()


def _successful_returns(messages: list[ModelMessage]) -> list[ToolReturnPart]:
    # A tool's `ModelRetry` comes back as a return with outcome 'retried': the model calls the tool again.
    return [
        p
        for m in messages
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, ToolReturnPart) and p.outcome != "retried"
    ]


def tool_loop_model(
    rounds: int,
    *,
    tool_name: str = "step",
    parallel: int = 1,
    final: str | None = None,
    counter: CallCounter | None = None,
) -> FunctionModel:
    """A model that calls `tool_name` in `rounds` sequential model responses, then answers.

    Args:
        rounds: How many model responses ask for tool calls before the final answer.
        tool_name: The tool to call; it gets `{"i": <call number>}` as arguments.
        parallel: Tool calls per response (they run in parallel in the agent).
        final: The final answer; by default it lists the tool results seen, so outputs prove what ran.
        counter: Records each request in a file, for counting across processes.
    """

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = _successful_returns(messages)
        done = len(returns)
        step = done // parallel
        if counter is not None:
            counter.bump(f"model:{step}")
        if step < rounds:
            return ModelResponse(
                parts=[
                    ToolCallPart(tool_name, {"i": done + j}, tool_call_id=f"call_{done + j}") for j in range(parallel)
                ]
            )
        if final is not None:
            return ModelResponse(parts=[TextPart(final)])
        return ModelResponse(parts=[TextPart("done: " + ", ".join(str(p.content) for p in returns))])

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str | DeltaToolCalls]:
        response = respond(messages, info)
        for index, part in enumerate(response.parts):
            if isinstance(part, TextPart):
                words = part.content.split(" ")
                for n, word in enumerate(words):
                    yield word if n == len(words) - 1 else word + " "
            elif isinstance(part, ToolCallPart):
                yield {
                    index: DeltaToolCall(
                        name=part.tool_name, json_args=json.dumps(part.args), tool_call_id=part.tool_call_id
                    )
                }

    return FunctionModel(respond, stream_function=stream, model_name=f"tool-loop-{rounds}")
