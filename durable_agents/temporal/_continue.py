"""Keeping workflow histories bounded: when to continue as new, and what to carry over.

Temporal caps a workflow history (50 MB and 51,200 events by default) and suggests continuing as
new well before that. With message deltas (see `durable_agents._history`) a run's history grows
linearly, but a long enough conversation still reaches the cap. Two tools:

- [`history_is_large`][durable_agents.temporal.history_is_large], checked by the workflow between
  agent runs (for example after each turn of a chat), to decide to `workflow.continue_as_new` and pass
  `message_history` to the next run;
- [`HistoryLimit`][durable_agents.temporal.HistoryLimit], given to a `TemporalAgent`: a run that
  reaches the limit stops before its next model request with
  [`HistoryLimitReached`][durable_agents.temporal.HistoryLimitReached], whose `messages` end with the
  request that was about to be sent. Running the agent again with `message_history=messages` and no
  prompt sends that request, so a single long run can span several workflow runs.

Both read `workflow.info().get_current_history_length()` / `get_current_history_size()`, which
come from the history itself and are the same on replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_ai.messages import ModelMessage
from temporalio import workflow

from ..exceptions import DurableAgentsError

__all__ = ["HistoryLimit", "HistoryLimitReached", "history_is_large"]


@dataclass(frozen=True)
class HistoryLimit:
    """When a workflow history counts as large. Any one condition is enough."""

    max_events: int | None = None
    """The history has more events than this."""
    max_bytes: int | None = None
    """The history is larger than this many bytes."""
    when_suggested: bool = True
    """The server suggests continuing as new (by default at a few thousand events or a few MB)."""

    def exceeded(self) -> str | None:
        """Why the current workflow's history is over the limit, or `None` if it is not (or not in a workflow)."""
        if not workflow.in_workflow():
            return None
        info = workflow.info()
        length = info.get_current_history_length()
        size = info.get_current_history_size()
        if self.max_events is not None and length > self.max_events:
            return f"the history has {length:,} events (limit {self.max_events:,})"
        if self.max_bytes is not None and size > self.max_bytes:
            return f"the history is {size:,} bytes (limit {self.max_bytes:,})"
        if self.when_suggested and info.is_continue_as_new_suggested():
            return f"the server suggests continuing as new ({length:,} events, {size:,} bytes)"
        return None


def history_is_large(
    max_events: int | None = None, max_bytes: int | None = None, *, when_suggested: bool = True
) -> bool:
    """Whether the running workflow should continue as new before starting another agent run.

    Args:
        max_events: Large when the history has more events than this.
        max_bytes: Large when the history is larger than this.
        when_suggested: Large when the server suggests continuing as new.
    """
    return HistoryLimit(max_events, max_bytes, when_suggested).exceeded() is not None


class HistoryLimitReached(DurableAgentsError):
    """A run inside a workflow stopped before a model request because the history reached its `HistoryLimit`.

    Catch it in the workflow and continue as new with `messages`; the next run calls
    `agent.run(None, message_history=messages)` to send the pending request.
    """

    def __init__(self, agent_name: str, reason: str, messages: Sequence[ModelMessage]) -> None:
        self.agent_name = agent_name
        self.reason = reason
        self.messages: list[ModelMessage] = list(messages)
        super().__init__(
            f"Agent {agent_name!r} stopped before a model request because {reason}. Fix: catch "
            "HistoryLimitReached in the workflow and `workflow.continue_as_new(...)` passing `exc.messages`; the "
            "next run continues with `run(None, message_history=messages)`."
        )
