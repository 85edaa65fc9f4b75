"""The state of one durable agent run on the container side."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.agent import EventStreamHandler
from pydantic_ai.toolsets import ToolsetTool

from ._history import MessageLog
from ._telemetry import RunTrace

__all__ = ["CURRENT_RUN", "RunState", "current_run", "parent_run", "traceparent_of"]


@dataclass
class RunState:
    """What the container keeps for one agent run while it is in progress."""

    agent_name: str
    """The durable agent running."""
    run_key: str
    """Unique and deterministic per run: replaying the container gives the same key."""
    model_key: str | None
    """Which model the units resolve (see `DurableAgent._resolve_run_model`)."""
    deps_json: Any
    """The run's deps as JSON data, encoded once when the run starts."""
    handler: EventStreamHandler[Any] | None
    """The event-stream handler units call, if any."""
    log: MessageLog = field(default_factory=MessageLog)
    """What the unit side holds of the message history."""
    listings: dict[tuple[str, int], dict[str, ToolsetTool[Any]]] = field(
        default_factory=dict[tuple[str, int], dict[str, ToolsetTool[Any]]]
    )
    """Tool lists of I/O toolsets by `(toolset id, run step)` (step -1: listed once per run)."""
    instructions: dict[tuple[str, int], str | None] = field(default_factory=dict[tuple[str, int], str | None])
    """Instructions of I/O toolsets, fetched with their listing."""
    live_records: int = 0
    """How many records of agent-level live events the container published (their keys count on)."""
    waits: int = 0
    """How many external-event waits the run has begun (numbers them, the same on replay)."""
    trace: RunTrace | None = None
    """The run's trace context; unit inputs carry its `traceparent`."""
    units_executed: int = 0
    """Units of this run whose body ran in this process during this execution of the container (in-process engines)."""
    units_replayed: int = 0
    """Units of this run whose recorded result the engine returned instead (in-process engines)."""
    replay_parts: bool = False
    """Whether container code streams this run (`iter`, `run_stream`, `run_stream_events`), and so gets each model
    response's parts as part events; `run()` does not, so its event-stream handler gets no second copy of them."""


CURRENT_RUN: ContextVar[RunState | None] = ContextVar("durable_agents_current_run", default=None)


def traceparent_of(state: RunState) -> str | None:
    """What a unit input of the run carries of its trace (the run span's `traceparent`), if it has one."""
    return None if state.trace is None else state.trace.traceparent


def current_run(agent_name: str) -> RunState | None:
    """The run of `agent_name` in progress in this context, if any."""
    state = CURRENT_RUN.get()
    if state is not None and state.agent_name == agent_name:
        return state
    return None


def parent_run(agent_name: str) -> RunState | None:
    """The run of another agent in progress in this context (whose tool is running `agent_name`), if any."""
    state = CURRENT_RUN.get()
    if state is not None and state.agent_name != agent_name:
        return state
    return None
