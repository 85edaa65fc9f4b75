"""Runs on Temporal, read with the temporalio client: visibility to list workflows, histories for their units.

A `TemporalAgent` runs inside the user's own workflow, so a run of a durable agent is a workflow execution whose
history schedules activities named after an agent's units (`<agent>.model`, `<agent>.toolset.<id>.call`, ...), or
records them as local activities. Listing reads the history of each recent workflow to find them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from ..exceptions import ConfigurationError, UnsupportedCapabilityError
from ._runs import RunDetail, RunRow, UnitRow, agents_of_units

__all__ = ["TemporalBackend"]

# How many recent workflows `runs list` reads, per run it is asked for: other workflows share the namespace.
_SCAN_FACTOR = 5
_LOCAL_ACTIVITY_MARKER = "core_local_activity"


class TemporalBackend:
    """Reads `TemporalAgent` runs from a Temporal server."""

    engine = "temporal"

    def __init__(self, address: str, namespace: str) -> None:
        self.address = address
        self.namespace = namespace

    async def _client(self) -> Any:
        from temporalio.client import Client

        try:
            return await Client.connect(self.address, namespace=self.namespace)
        except RuntimeError as exc:
            raise ConfigurationError(
                f"Cannot reach the Temporal server at {self.address}: {exc}. Fix: pass `--address host:port` "
                "(the frontend, 7233 by default) and `--namespace`; `temporal server start-dev` starts one locally."
            ) from exc

    async def list_runs(self, limit: int, agent: str | None) -> list[RunRow]:
        """The newest workflow executions that ran an agent's units, newest first."""
        client = await self._client()
        rows: list[RunRow] = []
        async for execution in client.list_workflows(limit=limit * _SCAN_FACTOR):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            units = _units(await handle.fetch_history())
            agents = agents_of_units([u.name for u in units])
            if not agents or (agent is not None and agent not in agents):
                continue
            status = execution.status.name if execution.status is not None else "UNKNOWN"
            rows.append(RunRow(execution.id, ", ".join(agents), status, execution.start_time, execution.close_time))
            if len(rows) == limit:
                break
        return rows

    async def show_run(self, run_id: str) -> RunDetail:
        """The workflow execution (the latest run of workflow id `run_id`) and its activities."""
        from temporalio.service import RPCError

        client = await self._client()
        handle = client.get_workflow_handle(run_id)
        try:
            description = await handle.describe()
            history = await handle.fetch_history()
        except RPCError as exc:
            raise ConfigurationError(
                f"Temporal namespace {self.namespace!r} has no workflow {run_id!r} ({exc}). Fix: take an id from "
                "`durable-agents runs list --engine temporal` and check `--address` and `--namespace`."
            ) from exc
        units = _units(history)
        status = description.status.name if description.status is not None else "UNKNOWN"
        detail = RunDetail(
            RunRow(
                run_id,
                ", ".join(agents_of_units([u.name for u in units])),
                status,
                description.start_time,
                description.close_time,
            ),
            units,
        )
        detail.facts = {
            "workflow type": description.workflow_type,
            "run id": description.run_id,
            "task queue": description.task_queue,
            "history events": str(description.history_length),
        }
        return detail

    async def resume_run(self, run_id: str, *, force: bool) -> str:
        """Temporal resumes runs itself; nothing to do."""
        raise UnsupportedCapabilityError(
            f"Temporal has no resume for run {run_id!r}: a workflow whose worker died is continued by any worker "
            "that polls its task queue, from its history. Fix: start a worker with the workflow and the agent "
            f"(`DurableAgentsPlugin`); to run a failed workflow again from an earlier point use "
            f"`temporal workflow reset --workflow-id {run_id} --type LastWorkflowTask`."
        )


def _units(history: Any) -> list[UnitRow]:
    """The activities and local activities of a workflow history, in the order they were scheduled."""
    units: dict[int, UnitRow] = {}
    for event in history.events:
        kind = event.WhichOneof("attributes")
        when = event.event_time.ToDatetime(tzinfo=UTC)
        if kind == "activity_task_scheduled_event_attributes":
            attrs = event.activity_task_scheduled_event_attributes
            units[event.event_id] = UnitRow(
                attrs.activity_type.name, "SCHEDULED", start=when, input_bytes=_bytes(attrs.input.payloads)
            )
            continue
        if kind == "marker_recorded_event_attributes":
            local = _local_activity(event.marker_recorded_event_attributes, when)
            if local is not None:
                units[event.event_id] = local
            continue
        if not kind or not kind.startswith("activity_task_"):
            continue
        attrs = getattr(event, kind)
        unit = units.get(attrs.scheduled_event_id)
        if unit is None:
            continue
        if kind == "activity_task_started_event_attributes":
            unit.status, unit.attempts = "STARTED", attrs.attempt
        elif kind == "activity_task_completed_event_attributes":
            unit.status, unit.end, unit.output_bytes = "COMPLETED", when, _bytes(attrs.result.payloads)
        elif kind == "activity_task_failed_event_attributes":
            unit.status, unit.end = "FAILED", when
        elif kind == "activity_task_timed_out_event_attributes":
            unit.status, unit.end = "TIMED_OUT", when
        elif kind == "activity_task_canceled_event_attributes":
            unit.status, unit.end = "CANCELED", when
    return list(units.values())


def _local_activity(marker: Any, recorded: datetime) -> UnitRow | None:
    """A local activity's marker: its activity type, attempt and times are JSON in the `data` detail."""
    if marker.marker_name != _LOCAL_ACTIVITY_MARKER or "data" not in marker.details:
        return None
    payloads = marker.details["data"].payloads
    try:
        data: dict[str, Any] = json.loads(payloads[0].data)
    except (IndexError, ValueError):
        return None
    failed = marker.HasField("failure")
    start = _timestamp(data.get("original_schedule_time"))
    result: Any = marker.details["result"].payloads if "result" in marker.details else []
    return UnitRow(
        str(data.get("activity_type", "?")),
        "FAILED (local)" if failed else "COMPLETED (local)",
        attempts=data.get("attempt"),
        start=start,
        end=_timestamp(data.get("complete_time")) or recorded,
        output_bytes=None if failed else _bytes(result),
    )


def _timestamp(value: Any) -> datetime | None:
    # Protobuf JSON of a Timestamp: {"seconds": ..., "nanos": ...}.
    if isinstance(value, dict) and "seconds" in value:
        stamp = cast(dict[str, Any], value)
        return datetime.fromtimestamp(int(stamp["seconds"]) + int(stamp.get("nanos", 0)) / 1e9, UTC)
    return None


def _bytes(payloads: Any) -> int:
    return sum(len(p.data) for p in payloads)
