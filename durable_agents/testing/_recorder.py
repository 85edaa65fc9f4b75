"""Record which units a process executes, in order."""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .._observers import UnitEvent, add_observer, remove_observer

__all__ = ["UnitRecorder", "record_units"]


@dataclass
class UnitRecorder:
    """The units executed while recording (units replayed from an engine's record are not executed)."""

    events: list[UnitEvent] = field(default_factory=list[UnitEvent])
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, event: UnitEvent) -> None:
        with self._lock:
            self.events.append(event)

    @property
    def names(self) -> list[str]:
        """Unit names, in execution order."""
        return [e.name for e in self.events]

    @property
    def labels(self) -> list[str]:
        """Unit labels (names plus tool names), in execution order."""
        return [e.label for e in self.events]

    @property
    def kinds(self) -> list[str]:
        """Unit kinds (`model`, `call`, `list`, `events`), in execution order."""
        return [e.kind.value for e in self.events]


@contextmanager
def record_units() -> Generator[UnitRecorder]:
    """Record the units this process executes inside the `with` block."""
    recorder = UnitRecorder()
    add_observer(recorder)
    try:
        yield recorder
    finally:
        remove_observer(recorder)
