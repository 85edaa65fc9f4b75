"""Measuring how large a workflow's history is, as the server stores it."""

from __future__ import annotations

from typing import Any

from temporalio.api.history.v1 import History
from temporalio.client import WorkflowHandle, WorkflowHistory

__all__ = ["HistoryStats", "history_stats"]


class HistoryStats:
    """Size facts of one workflow history."""

    def __init__(self, history: WorkflowHistory) -> None:
        self.history = history
        proto = History(events=history.events)
        self.bytes = proto.ByteSize()
        """The serialized history proto, in bytes."""
        self.events = len(history.events)
        """How many events the history has."""
        self.activity_types = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        """The type (unit name) of every scheduled activity, in order."""
        self.activity_input_bytes = sum(
            p.ByteSize()
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            for p in e.activity_task_scheduled_event_attributes.input.payloads
        )
        """Bytes of every activity input payload."""
        self.activity_result_bytes = sum(
            p.ByteSize()
            for e in history.events
            if e.HasField("activity_task_completed_event_attributes")
            for p in e.activity_task_completed_event_attributes.result.payloads
        )
        """Bytes of every activity result payload."""

    def __repr__(self) -> str:
        return f"HistoryStats(bytes={self.bytes}, events={self.events}, activities={len(self.activity_types)})"


async def history_stats(handle: WorkflowHandle[Any, Any]) -> HistoryStats:
    """Fetch a workflow's history and measure it (tests and benchmarks use this)."""
    return HistoryStats(await handle.fetch_history())
