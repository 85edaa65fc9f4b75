"""Crash injection: fail, or kill the process, when a chosen unit starts.

In a subprocess, set the environment variable `DURABLE_AGENTS_CRASH` to `<label substring>@<n>`
(for example `tools.agent.call/step@2`: the second call of tool `step`) and call
`inject_crash()` with no arguments; the process exits with code 86 when that unit starts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Literal

from .._observers import UnitEvent, add_observer, remove_observer

__all__ = ["CRASH_ENV", "CRASH_EXIT_CODE", "CrashInjected", "inject_crash"]

CRASH_ENV = "DURABLE_AGENTS_CRASH"
"""Environment variable read by `inject_crash()` when called without a target."""
CRASH_EXIT_CODE = 86
"""The exit code of a process killed by crash injection."""


class CrashInjected(RuntimeError):
    """Raised by a unit when crash injection is in `raise` mode."""


def inject_crash(match: str | None = None, nth: int = 1, mode: Literal["exit", "raise"] = "exit") -> Callable[[], None]:
    """Crash when the `nth` unit whose label contains `match` starts executing in this process.

    Args:
        match: Substring of the unit label (`<agent>.toolset.<id>.call/<tool>`, `<agent>.model`, ...).
            `None` reads `<match>@<nth>` from the `DURABLE_AGENTS_CRASH` environment variable (no-op if unset).
        nth: Which matching unit crashes (1 = the first).
        mode: `exit` kills the process at once with `os._exit(86)`, as a power cut would; `raise` raises
            [`CrashInjected`][durable_agents.testing.CrashInjected] inside the unit.

    Returns:
        A function that removes the injection.
    """
    if match is None:
        spec = os.environ.get(CRASH_ENV, "")
        if not spec:
            return lambda: None
        match, _, count = spec.rpartition("@")
        nth = int(count)
    seen = 0
    lock = threading.Lock()

    def observer(event: UnitEvent) -> None:
        nonlocal seen
        if match not in event.label:
            return
        with lock:
            seen += 1
            hit = seen == nth
        if hit:
            if mode == "exit":
                os._exit(CRASH_EXIT_CODE)
            raise CrashInjected(f"crash injected at {event.label} (#{nth})")

    add_observer(observer)
    return lambda: remove_observer(observer)
