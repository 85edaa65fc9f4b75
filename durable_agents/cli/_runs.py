"""What the CLI reads from an engine, in the engine-neutral vocabulary: runs (containers) and their units.

Each engine module (`_dbos.py`, `_temporal.py`, `_prefect.py`) reads its engine's record through the engine's
public client and answers with these rows; the tables and the JSON output are built from them alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from .._units import parse_unit_label

__all__ = ["Backend", "RunDetail", "RunRow", "UnitRow", "agents_of_units"]


@dataclass
class RunRow:
    """One run of a durable agent: a DBOS workflow, a Temporal workflow execution or a Prefect flow run."""

    run_id: str
    """The engine's id of the container run (what `runs show` and `runs resume` take)."""
    agent: str
    """The agent (or agents, comma-separated) the run ran."""
    status: str
    """The engine's own status word (`SUCCESS`, `COMPLETED`, `Crashed`, ...)."""
    start: datetime | None = None
    end: datetime | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (to now while the run is not finished)."""
        if self.start is None:
            return None
        return ((self.end or datetime.now(UTC)) - self.start).total_seconds()

    def as_json(self) -> dict[str, Any]:
        """The row as JSON data."""
        return {
            "run_id": self.run_id,
            "agent": self.agent,
            "status": self.status,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "duration_s": self.duration,
        }


@dataclass
class UnitRow:
    """One unit of a run: a Temporal activity, a DBOS step or a Prefect task run."""

    name: str
    """The unit's label (`<agent>.model`, `<agent>.toolset.<id>.call/<tool>`, ...), or the engine's name of it."""
    status: str
    """The engine's own status word for it."""
    attempts: int | None = None
    """How many times the engine ran it; `None` where the engine does not record it (DBOS)."""
    start: datetime | None = None
    end: datetime | None = None
    input_bytes: int | None = None
    """Size of the stored input; `None` where the engine does not store unit inputs (DBOS, Prefect)."""
    output_bytes: int | None = None
    """Size of the stored output; `None` while it has none, or where it cannot be read."""

    @property
    def kind(self) -> str:
        """`model`, `call`, `list`, `events`, or `other` for a unit that is not one of an agent's."""
        parsed = parse_unit_label(self.name)
        return parsed.kind.value if parsed is not None else "other"

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, `None` until it ended."""
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    def as_json(self) -> dict[str, Any]:
        """The row as JSON data."""
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "duration_s": self.duration,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
        }


@dataclass
class RunDetail:
    """A run and its units, oldest unit first."""

    run: RunRow
    units: list[UnitRow] = field(default_factory=list[UnitRow])
    facts: dict[str, str] = field(default_factory=dict[str, str])
    """Engine-specific facts worth showing (workflow type, application version, task queue...)."""

    def as_json(self) -> dict[str, Any]:
        """The run, its facts and its units as JSON data."""
        return {**self.run.as_json(), "facts": self.facts, "units": [u.as_json() for u in self.units]}


class Backend(Protocol):
    """What each engine module provides to the commands."""

    engine: str

    async def list_runs(self, limit: int, agent: str | None) -> list[RunRow]:
        """The most recent runs of durable agents, newest first."""
        ...

    async def show_run(self, run_id: str) -> RunDetail:
        """One run and its units; `ConfigurationError` when the engine has no run of that id."""
        ...

    async def resume_run(self, run_id: str, *, force: bool) -> str:
        """Resume a run the engine will not resume by itself; returns what happened, in a sentence."""
        ...


def agents_of_units(names: list[str]) -> list[str]:
    """The agents whose units these are, in order of first appearance."""
    agents: list[str] = []
    for name in names:
        parsed = parse_unit_label(name)
        if parsed is not None and parsed.agent not in agents:
            agents.append(parsed.agent)
    return agents


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
