"""The workloads every engine runs: which K, and which agents exist for them (import-light, sandbox-safe)."""

from __future__ import annotations

import os
from pathlib import Path

from durable_agents.testing import CallCounter

from ._common import Workload

LATENCY_WORKLOADS = (Workload(0), Workload(1), Workload(4), Workload(16), Workload(4, 4))
HISTORY_KS = (0, 8, 16, 32, 64)
THROUGHPUT_WORKLOAD = Workload(4)
RECOVERY_WORKLOAD = Workload(4)
COUNTER_ENV = "DURABLE_AGENTS_BENCH_COUNTER"


def all_workloads() -> list[Workload]:
    """Every workload an engine section may run, each once."""
    seen: dict[str, Workload] = {}
    for w in (*LATENCY_WORKLOADS, *(Workload(k) for k in HISTORY_KS), THROUGHPUT_WORKLOAD):
        seen.setdefault(w.key, w)
    return list(seen.values())


class EnvCounter(CallCounter):
    """Counts model requests in the file named by `DURABLE_AGENTS_BENCH_COUNTER` (recovery runs)."""

    def __init__(self) -> None:
        pass

    @property
    def path(self) -> Path:  # type: ignore[override]
        return Path(os.environ.get(COUNTER_ENV, os.devnull))
