"""Process-wide observers of unit execution, for tests and demos.

Every unit body calls [`notify`][durable_agents._observers.notify] when it really executes (not when an engine
replays its recorded result), so observers see exactly the work a process did. The public face
of this module is `durable_agents.testing` (unit recorder, crash injection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._units import UnitKind

__all__ = ["UnitEvent", "add_observer", "notify", "remove_observer"]


@dataclass(frozen=True)
class UnitEvent:
    """One unit execution, as seen from inside the unit."""

    name: str
    """The unit's stable name."""
    kind: UnitKind
    """What the unit does."""
    label: str
    """The name plus the tool name for tool calls (`<unit>/<tool>`)."""
    agent: str
    """The agent's name."""


Observer = Callable[[UnitEvent], None]

_observers: list[Observer] = []


def add_observer(observer: Observer) -> None:
    """Call `observer` for every unit this process executes from now on."""
    _observers.append(observer)


def remove_observer(observer: Observer) -> None:
    """Stop calling `observer`."""
    if observer in _observers:
        _observers.remove(observer)


def notify(event: UnitEvent) -> None:
    """Tell every observer that a unit is about to execute."""
    for observer in list(_observers):
        observer(event)
