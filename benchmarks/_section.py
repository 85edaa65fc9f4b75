"""Running one engine section in its own process: modes, the result it hands back, and failure capture."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ._common import Table, Workload
from ._workloads import HISTORY_KS, LATENCY_WORKLOADS


@dataclass(frozen=True)
class Mode:
    name: str
    iterations: int
    warmup: int
    slow_iterations: int
    workloads: tuple[Workload, ...]
    history_ks: tuple[int, ...]
    throughput_runs: int
    throughput_reps: int
    recovery: bool


MODES = {
    "smoke": Mode("smoke", 1, 0, 1, (Workload(0), Workload(1)), (0, 8), 4, 1, True),
    "quick": Mode("quick", 3, 0, 2, LATENCY_WORKLOADS, HISTORY_KS, 20, 1, True),
    "full": Mode("full", 15, 2, 5, LATENCY_WORKLOADS, HISTORY_KS, 50, 2, True),
}


@dataclass
class SectionResult:
    engine: str
    tables: list[Table] = field(default_factory=list[Table])
    metrics: dict[str, float] = field(default_factory=dict[str, float])
    errors: list[dict[str, str]] = field(default_factory=list[dict[str, str]])
    meta: dict[str, Any] = field(default_factory=dict[str, Any])

    async def part(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run one part of the section; a failure is recorded for the report and the section goes on."""
        only = os.environ.get("BENCH_PARTS")
        if only and name != "setup+all" and name not in only.split(","):
            return
        t0 = time.perf_counter()
        try:
            await body()
        except Exception as exc:
            tb = traceback.format_exc()
            print(tb, file=sys.stderr, flush=True)
            self.errors.append({"part": name, "error": f"{type(exc).__name__}: {exc}", "traceback": tb[-3000:]})
        finally:
            self.meta.setdefault("part_seconds", {})[name] = round(time.perf_counter() - t0, 1)
            print(f"[{self.engine}] {name} done in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "tables": [t.to_json() for t in self.tables],
            "metrics": self.metrics,
            "errors": self.errors,
            "meta": self.meta,
        }


def section_main(engine: str, run: Callable[[Mode, argparse.Namespace, SectionResult], Awaitable[None]]) -> None:
    """The entry point of a section process: `python -m benchmarks._<engine> --mode M --out F [...]`."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=sorted(MODES), default="quick")
    parser.add_argument("--out", required=True)
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--variant", default=None)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    result = SectionResult(args.variant or engine)

    async def main() -> None:
        await result.part("setup+all", lambda: run(MODES[args.mode], args, result))

    try:
        asyncio.run(main())
    finally:
        with open(args.out, "w") as f:
            json.dump(result.to_json(), f)
        sys.stdout.flush()
        sys.stderr.flush()
    # Engines' background threads (temporalio's core, DBOS's pollers) can hang or abort at interpreter exit
    # after the work is done: the result file is written, so leave now.
    os._exit(0)
