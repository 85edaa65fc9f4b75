"""Prefect section: latency, throughput and recovery on a local Prefect server (PostgreSQL-backed if available)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from durable_agents.testing import CallCounter, PrefectServer

from ._common import CRASH_AT_ENV, CRASH_EXIT, Table, latency_tables, output_check, ratio, round_robin
from ._pg import create_database, free_port
from ._section import Mode, SectionResult, section_main
from ._workloads import COUNTER_ENV, RECOVERY_WORKLOAD, THROUGHPUT_WORKLOAD


def _start_server(workdir: Path, pg_url: str | None) -> tuple[PrefectServer, str]:
    port = free_port()
    os.environ.update(
        {
            "PREFECT_HOME": str(workdir / "home"),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
        }
    )
    backend = "SQLite"
    if pg_url:
        name = f"prefect_{uuid.uuid4().hex[:8]}"
        create_database(pg_url, name)
        os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = (
            pg_url.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
        )
        backend = "PostgreSQL"
    server = PrefectServer(port, workdir / "server.log")
    server.start()
    return server, backend


async def run(mode: Mode, args: argparse.Namespace, result: SectionResult) -> None:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-prefect-"))
    t0 = time.perf_counter()
    server, backend = _start_server(workdir, args.pg_url)
    result.meta["server"] = f"prefect server start (local, {backend}), started in {time.perf_counter() - t0:.1f} s"
    try:
        await _run(mode, result, workdir)
    finally:
        server.stop()


async def _run(mode: Mode, result: SectionResult, workdir: Path) -> None:
    from ._prefect_agents import OURS, PAI, PLAIN, WORKLOADS, floor_flow, floor_persisted_flow, floor_plan

    engine = "Prefect"

    async def latency() -> None:
        results: dict[str, dict[str, dict[str, float]]] = {}
        for w in mode.workloads:
            key = w.key
            variants = {
                "plain": lambda key=key: PLAIN[key].run("go"),
                "ours": lambda key=key: OURS[key].run("go"),
                "pydantic-ai": lambda key=key: PAI[key].run("go"),
                "floor": lambda key=key: floor_flow(floor_plan(WORKLOADS[key])),
                "floor (persisted)": lambda key=key: floor_persisted_flow(floor_plan(WORKLOADS[key])),
            }
            out = w.expected_output
            check = output_check({"plain": out, "ours": out, "pydantic-ai": out})
            samples = await round_robin(variants, mode.slow_iterations, mode.warmup, check)
            results[w.label] = {v: s.summary() for v, s in samples.items()}
            med = {v: s["median_ms"] for v, s in results[w.label].items()}
            result.metrics[f"prefect.{key}.ours_over_floor"] = ratio(med["ours"], med["floor"])
            result.metrics[f"prefect.{key}.ours_over_pai"] = ratio(med["ours"], med["pydantic-ai"])
            result.metrics[f"prefect.{key}.ours_over_floor_persisted"] = ratio(med["ours"], med["floor (persisted)"])
        result.tables += latency_tables(
            "latency",
            engine,
            results,
            notes=[
                "floor: a flow running 2K+1 no-op tasks with Prefect's default task settings (a model task, then its "
                "tool tasks in parallel, per round).",
                "ours persists task results (so `resume` can skip completed tasks after a crash); pydantic-ai's "
                "wrapper and `floor` use Prefect's defaults; `floor (persisted)` is the floor with "
                "`persist_result=True`, the same work per task as ours.",
                "CPU is this process's CPU time; the server's is not included.",
            ],
        )

    async def throughput() -> None:
        n = mode.throughput_runs
        key = THROUGHPUT_WORKLOAD.key
        rows: list[list[Any]] = []
        rates: dict[str, float] = {}
        for variant, fn in (
            ("ours", lambda: OURS[key].run("go")),
            ("pydantic-ai", lambda: PAI[key].run("go")),
            ("floor", lambda: floor_flow(floor_plan(WORKLOADS[key]))),
        ):
            c0, t0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(fn() for _ in range(n)))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rates[variant] = n / wall
            rows.append([variant, n, n / wall, cpu / n * 1000])
        for row in rows:
            row.append(ratio(row[2], rates["pydantic-ai"]))
        result.metrics["prefect.throughput.ours_over_pai"] = ratio(rates["ours"], rates["pydantic-ai"])
        result.tables.append(
            Table(
                "throughput",
                f"{engine}: {n} concurrent runs at {THROUGHPUT_WORKLOAD.label}, one process",
                ["variant", "runs", "runs/s", "CPU ms/run", "vs pydantic-ai"],
                rows,
                ["one batch; `asyncio.gather` of `run()` calls (each a flow run)."],
            )
        )

    async def recovery() -> None:
        row = await asyncio.to_thread(_recovery, workdir)
        result.metrics["prefect.recovery.ours.resent"] = row[2]
        result.tables.append(
            Table(
                "recovery",
                f"{engine}: process killed at tool call 2 of {RECOVERY_WORKLOAD.k}",
                [
                    "engine",
                    "variant",
                    "model requests re-sent",
                    "model requests total",
                    "time to finish s (resume to result)",
                    "time to finish s (new process to result)",
                    "output ok",
                ],
                [row],
                [
                    "The process exits (os._exit) inside tool call 2; the flow run stays RUNNING. A new process "
                    "calls `PrefectAgent.resume(flow_run_id)`: completed tasks return their persisted results. "
                    "pydantic-ai's PrefectAgent has no resume of a crashed flow run, so it is not measured.",
                ],
            )
        )

    await result.part("latency", latency)
    await result.part("throughput", throughput)
    if mode.recovery and mode.name != "smoke":
        await result.part("recovery", recovery)


def _recovery(workdir: Path) -> list[Any]:
    counter = workdir / f"calls-{uuid.uuid4().hex[:6]}"
    out = workdir / f"recovery-{uuid.uuid4().hex[:6]}.json"
    base = [sys.executable, "-m", "benchmarks._prefect_recovery"]
    started = time.time()
    crash = subprocess.run(
        [*base, "crash"], env={**os.environ, COUNTER_ENV: str(counter), CRASH_AT_ENV: "1"}, timeout=300, check=False
    )
    if crash.returncode != CRASH_EXIT:
        raise RuntimeError(f"the crashing process exited with {crash.returncode}, expected {CRASH_EXIT}")
    before = len(CallCounter(counter).calls)
    if before != 2:
        raise RuntimeError(f"expected 2 model requests before the crash, counted {before}")
    flow_run_id = asyncio.run(_running_flow_run("ours_recovery", started))
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT_ENV}
    subprocess.run(
        [*base, "recover", "--flow-run-id", flow_run_id, "--out", str(out)],
        env={**env, COUNTER_ENV: str(counter)},
        check=True,
        timeout=300,
    )
    data = json.loads(out.read_text())
    calls = CallCounter(counter).calls
    return [
        "Prefect",
        "ours",
        len(calls) - RECOVERY_WORKLOAD.model_units,
        len(calls),
        data["resume_to_result"],
        data["process_to_result"],
        data["output"] == RECOVERY_WORKLOAD.expected_output,
    ]


async def _running_flow_run(flow_name: str, since: float) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async with get_client() as client:
        runs = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))
    running = [r for r in runs if r.state is not None and r.state.is_running()]
    if len(running) != 1:
        raise RuntimeError(f"expected one RUNNING flow run of {flow_name!r}, found {len(running)} of {len(runs)}")
    return str(running[0].id)


if __name__ == "__main__":
    section_main("prefect", run)
