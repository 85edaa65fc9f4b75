"""Memory section: resident set size over many sequential runs of one agent, per engine.

Each engine runs in a process of its own (`benchmarks._memory_probe`), so one engine's garbage never hides or
inflates another's growth. After a warm-up, the probe samples its RSS every N/10 runs (after a `gc.collect()`),
with the number of runs the unit side's history cache holds. Growth is measured from the first sample after the
warm-up to the last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import Table
from ._memory_probe import WORKLOAD
from ._section import Mode, SectionResult, section_main


@dataclass(frozen=True)
class Probe:
    engine: str
    label: str
    runs: int
    warmup: int
    result_bytes: int = 0


# (runs, warm-up) per mode; Prefect runs are about 20x slower than local ones, so it gets fewer.
RUNS = {"smoke": (20, 3), "quick": (300, 20), "full": (1000, 50)}
PREFECT_RUNS = {"quick": (100, 10), "full": (300, 20)}
LARGE_RESULT_BYTES = 100_000


def probes(mode: Mode) -> list[Probe]:
    runs, warmup = RUNS[mode.name]
    out = [
        Probe("local", "local", runs, warmup),
        Probe("dbos-sqlite", "DBOS, SQLite", runs, warmup),
    ]
    if mode.name in PREFECT_RUNS:
        out.append(Probe("prefect", "Prefect", *PREFECT_RUNS[mode.name]))
        # The shape of the bug report: modest runs whose tool results are large. Local only: what holds the
        # memory is the engine-neutral core, and a journaling engine would also write every result to disk.
        out.append(
            Probe("local", "local, 100 KB tool results", min(runs, 300), warmup, result_bytes=LARGE_RESULT_BYTES)
        )
    return out


def _probe(probe: Probe, workdir: Path) -> dict[str, Any]:
    out = workdir / f"memory-{probe.engine}-{probe.result_bytes}.json"
    cmd = [sys.executable, "-m", "benchmarks._memory_probe", "--engine", probe.engine]
    cmd += ["--runs", str(probe.runs), "--warmup", str(probe.warmup), "--result-bytes", str(probe.result_bytes)]
    cmd += ["--workdir", str(workdir), "--out", str(out)]
    subprocess.run(cmd, check=True, timeout=3000)
    return json.loads(out.read_text())


async def run(mode: Mode, args: argparse.Namespace, result: SectionResult) -> None:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-memory-"))
    result.meta["server"] = "one process per engine (Prefect: a local server)"
    measured: list[tuple[Probe, dict[str, Any]]] = []

    async def measure(probe: Probe) -> None:
        measured.append((probe, await asyncio.to_thread(_probe, probe, workdir)))

    plan = probes(mode)
    if mode.name == "smoke":  # seconds matter more than a quiet machine here: both engines at once
        await result.part("local + DBOS", lambda: _gather(*(measure(p) for p in plan)))
    else:
        for probe in plan:
            if probe.engine == "prefect":
                await result.part(probe.label, lambda probe=probe: _with_prefect_server(probe, workdir, args, measure))
            else:
                await result.part(probe.label, lambda probe=probe: measure(probe))
    measured.sort(key=lambda m: plan.index(m[0]))

    summary: list[list[Any]] = []
    per_sample: list[list[Any]] = []
    for probe, data in measured:
        samples = data["samples"]
        first, last = samples[0], samples[-1]
        runs = last["runs"] - first["runs"]
        growth = last["rss_mb"] - first["rss_mb"]
        key = f"memory.{probe.engine.replace('-', '_')}" + (".large" if probe.result_bytes else "")
        result.metrics[f"{key}.kb_per_run"] = growth * 1024 / runs
        summary.append(
            [
                probe.label,
                probe.warmup,
                runs,
                _mb(first["rss_mb"]),
                _mb(last["rss_mb"]),
                _mb(growth),
                f"{growth * 1024 / runs:.1f}",
                last["cached_runs"],
                data["seconds"] / runs * 1000,
            ]
        )
        per_sample.append([probe.label, *(_mb(s["rss_mb"]) for s in samples)])
    if not measured:
        return
    notes = [
        "RSS from /proc/self/statm after `gc.collect()`; growth from the first sample after the warm-up to the last. "
        "`history cache runs`: the runs the unit side's process-wide history cache still holds.",
    ]
    if any(p.result_bytes for p, _ in measured):
        notes.append(
            f"`100 KB tool results`: each of the 4 tool calls returns {LARGE_RESULT_BYTES:,} bytes and the final "
            "answer repeats them (the shape of the bug report: about 800 KB of messages per run)."
        )
    result.tables.append(
        Table(
            "memory",
            f"Resident set size over sequential runs at K={WORKLOAD.k} (one process per engine)",
            [
                "engine",
                "warm-up runs",
                "runs measured",
                "RSS after warm-up MB",
                "RSS at end MB",
                "growth MB",
                "growth KB/run",
                "history cache runs at end",
                "ms/run",
            ],
            summary,
            notes,
        )
    )
    width = max(len(row) for row in per_sample)
    result.tables.append(
        Table(
            "memory",
            "RSS (MB) at each sample: after the warm-up, then every tenth of the runs",
            ["engine", "after warm-up", *(f"{10 * i}%" for i in range(1, width - 1))],
            [row + [""] * (width - len(row)) for row in per_sample],
        )
    )


def _mb(value: float) -> str:
    return f"{value:.1f}"


async def _gather(*aws: Any) -> None:
    await asyncio.gather(*aws)


async def _with_prefect_server(probe: Probe, workdir: Path, args: argparse.Namespace, measure: Any) -> None:
    from ._prefect import _start_server  # pyright: ignore[reportPrivateUsage]

    t0 = time.perf_counter()
    (workdir / "prefect").mkdir(exist_ok=True)
    server, backend = _start_server(workdir / "prefect", args.pg_url)
    print(f"[memory] Prefect server ({backend}) started in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    try:
        await measure(probe)
    finally:
        server.stop()


if __name__ == "__main__":
    section_main("memory", run)
