"""DBOS section (SQLite or PostgreSQL): latency, system-table rows and bytes, throughput and recovery."""

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

import sqlalchemy as sa
from dbos import DBOS, SetWorkflowID

from durable_agents.testing import CallCounter

from ._common import CRASH_AT_ENV, CRASH_EXIT, Table, latency_tables, output_check, ratio, round_robin
from ._section import Mode, SectionResult, section_main
from ._workloads import COUNTER_ENV, RECOVERY_WORKLOAD, THROUGHPUT_WORKLOAD


def _system_url(args: argparse.Namespace, workdir: Path, name: str) -> str:
    if args.variant == "dbos-postgres":
        if not args.pg_url:
            raise RuntimeError("no PostgreSQL cluster (--pg-url) for the dbos-postgres section")
        return f"{args.pg_url}/{name}_{uuid.uuid4().hex[:8]}"
    return f"sqlite:///{workdir / (name + '.sqlite')}"


def _sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


async def run(mode: Mode, args: argparse.Namespace, result: SectionResult) -> None:
    from ._dbos_agents import OURS, PAI, PAI_STEPS, PLAIN, WORKLOADS, dbos_config, floor_plan, floor_workflow

    engine = "DBOS, SQLite" if args.variant == "dbos-sqlite" else "DBOS, PostgreSQL"
    prefix = "dbos_sqlite" if args.variant == "dbos-sqlite" else "dbos_pg"
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-dbos-"))
    url = _system_url(args, workdir, "bench")
    DBOS(config=dbos_config(url))  # type: ignore[arg-type]
    DBOS.launch()
    result.meta["server"] = engine

    def floor(key: str, tools: bool = True) -> Any:
        return floor_workflow(floor_plan(WORKLOADS[key], tools=tools))

    async def latency() -> None:
        results: dict[str, dict[str, dict[str, float]]] = {}
        for w in mode.workloads:
            key = w.key
            variants = {
                "plain": lambda key=key: PLAIN[key].run("go"),
                "ours": lambda key=key: OURS[key].run("go"),
                "pydantic-ai": lambda key=key: PAI[key].run("go"),
                "pydantic-ai+steps": lambda key=key: PAI_STEPS[key].run("go"),
                "floor": lambda key=key: floor(key),
                "floor (model units)": lambda key=key: floor(key, tools=False),
            }
            out = w.expected_output
            check = output_check({"plain": out, "ours": out, "pydantic-ai": out, "pydantic-ai+steps": out})
            samples = await round_robin(variants, mode.iterations, mode.warmup, check)
            results[w.label] = {v: s.summary() for v, s in samples.items()}
            med = {v: s["median_ms"] for v, s in results[w.label].items()}
            result.metrics[f"{prefix}.{key}.ours_over_floor"] = ratio(med["ours"], med["floor"])
            result.metrics[f"{prefix}.{key}.ours_over_pai"] = ratio(med["ours"], med["pydantic-ai"])
            result.metrics[f"{prefix}.{key}.ours_over_pai_steps"] = ratio(med["ours"], med["pydantic-ai+steps"])
        result.tables += latency_tables(
            "latency",
            engine,
            results,
            notes=[
                "ours journals every tool call as a step (2K+1 steps per run); pydantic-ai's DBOSAgent journals "
                "model requests only (K+1 steps), unless the user decorates each tool with `@DBOS.step` "
                "(`pydantic-ai+steps`).",
                "floor: a DBOS workflow running 2K+1 no-op steps (a model step, then its tool steps in parallel, per "
                "round); `floor (model units)`: K+1 no-op steps, the floor of pydantic-ai's default.",
                "CPU is this process's CPU time (DBOS runs in-process).",
            ],
        )

    async def tables() -> None:
        engine_sa = sa.create_engine(_sa_url(url))
        insp = sa.inspect(engine_sa)
        schema = "dbos" if url.startswith("postgresql") else None
        by_table = {
            t: [c["name"] for c in insp.get_columns(t, schema=schema)] for t in insp.get_table_names(schema=schema)
        }
        keyed = {t: cols for t, cols in by_table.items() if "workflow_uuid" in cols}

        def measure(wid: str) -> tuple[int, int]:
            rows = size = 0
            with engine_sa.connect() as conn:
                ids = [wid]
                ids += [
                    r[0]
                    for r in conn.execute(
                        sa.text(
                            f"SELECT workflow_uuid FROM {_q(schema, 'workflow_status')} WHERE parent_workflow_id = :w"
                        ),
                        {"w": wid},
                    )
                ]
                for table in keyed:
                    for r in conn.execute(
                        sa.text(f"SELECT * FROM {_q(schema, table)} WHERE workflow_uuid IN :ids").bindparams(
                            sa.bindparam("ids", expanding=True)
                        ),
                        {"ids": ids},
                    ):
                        rows += 1
                        size += sum(_size(v) for v in r)
            return rows, size

        out: list[list[Any]] = []
        for w in mode.workloads:
            row: list[Any] = [w.label]
            for name, run_one in (
                ("ours", lambda key=w.key: OURS[key].run("go")),
                ("pydantic-ai", lambda key=w.key: PAI[key].run("go")),
                ("pydantic-ai+steps", lambda key=w.key: PAI_STEPS[key].run("go")),
                ("floor", lambda key=w.key: floor(key)),
            ):
                wid = f"tables-{name}-{uuid.uuid4().hex[:8]}"
                with SetWorkflowID(wid):
                    await run_one()
                rows, size = measure(wid)
                row += [rows, size]
                result.metrics[f"{prefix}.tables.{w.key}.{name}.bytes"] = size
            out.append(row)
        engine_sa.dispose()
        result.tables.append(
            Table(
                "dbos_tables",
                f"{engine}: system-table rows and bytes per run",
                [
                    "workload",
                    "ours rows",
                    "ours bytes",
                    "pydantic-ai rows",
                    "pydantic-ai bytes",
                    "pydantic-ai+steps rows",
                    "pydantic-ai+steps bytes",
                    "floor rows",
                    "floor bytes",
                ],
                out,
                [
                    "Rows of every system table keyed by the run's workflow id (and its child workflows'); bytes: the "
                    "sum of the stored values' lengths (text and blobs as stored, numbers as 8).",
                    f"Tables counted: {', '.join(sorted(keyed))}.",
                ],
            )
        )

    async def throughput() -> None:
        n = mode.throughput_runs
        key = THROUGHPUT_WORKLOAD.key
        rows: list[list[Any]] = []
        rates: dict[str, float] = {}
        for variant, fn in (
            ("ours", lambda: OURS[key].run("go")),
            ("pydantic-ai", lambda: PAI[key].run("go")),
            ("pydantic-ai+steps", lambda: PAI_STEPS[key].run("go")),
            ("floor", lambda: floor(key)),
            ("floor (model units)", lambda: floor(key, tools=False)),
        ):
            best, cpu_per_run = 0.0, float("nan")
            for _ in range(mode.throughput_reps):
                c0, t0 = time.process_time(), time.perf_counter()
                await asyncio.gather(*(fn() for _ in range(n)))
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                if n / wall > best:
                    best, cpu_per_run = n / wall, cpu / n * 1000
            rates[variant] = best
            rows.append([variant, n, best, cpu_per_run])
        for row in rows:
            row.append(ratio(row[2], rates["pydantic-ai"]))
        result.metrics[f"{prefix}.throughput.ours_over_pai"] = ratio(rates["ours"], rates["pydantic-ai"])
        result.tables.append(
            Table(
                "throughput",
                f"{engine}: {n} concurrent runs at {THROUGHPUT_WORKLOAD.label}, one process",
                ["variant", "runs", "runs/s", "CPU ms/run", "vs pydantic-ai"],
                rows,
                [f"best of {mode.throughput_reps} batch(es); `asyncio.gather` of `run()` calls."],
            )
        )

    async def recovery() -> None:
        rows: list[list[Any]] = []
        variants = ("ours", "pydantic-ai+steps") if mode.name == "full" else ("ours",)
        for variant in variants:
            rows.append(await asyncio.to_thread(_recovery, args, workdir, engine, variant))
            result.metrics[f"{prefix}.recovery.{variant}.resent"] = rows[-1][2]
        result.tables.append(
            Table(
                "recovery",
                f"{engine}: process killed at tool call 2 of {RECOVERY_WORKLOAD.k}",
                [
                    "engine",
                    "variant",
                    "model requests re-sent",
                    "model requests total",
                    "time to finish s (launch to result)",
                    "time to finish s (new process to result)",
                    "output ok",
                ],
                rows,
                [
                    "The process exits (os._exit) inside tool call 2; a new process with the same application "
                    "version calls `DBOS.launch()`, which recovers the pending workflow.",
                ],
            )
        )

    await result.part("latency", latency)
    await result.part("tables", tables)
    await result.part("throughput", throughput)
    if mode.recovery:
        await result.part("recovery", recovery)
    DBOS.destroy()


def _recovery(args: argparse.Namespace, workdir: Path, engine: str, variant: str) -> list[Any]:
    url = _system_url(args, workdir, f"recovery_{variant.replace('+', '_').replace('-', '_')}")
    counter = workdir / f"calls-{uuid.uuid4().hex[:6]}"
    wid = f"recovery-{uuid.uuid4().hex[:8]}"
    out = workdir / f"recovery-{uuid.uuid4().hex[:6]}.json"
    base = [sys.executable, "-m", "benchmarks._dbos_recovery"]
    common = ["--url", url, "--variant", variant, "--wid", wid]
    crash = subprocess.run(
        [*base, "crash", *common],
        env={**os.environ, COUNTER_ENV: str(counter), CRASH_AT_ENV: "1"},
        timeout=180,
        check=False,
    )
    if crash.returncode != CRASH_EXIT:
        raise RuntimeError(f"the crashing process exited with {crash.returncode}, expected {CRASH_EXIT}")
    before = len(CallCounter(counter).calls)
    if before != 2:
        raise RuntimeError(f"expected 2 model requests before the crash, counted {before}")
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT_ENV}
    subprocess.run(
        [*base, "recover", *common, "--out", str(out)], env={**env, COUNTER_ENV: str(counter)}, check=True, timeout=180
    )
    data = json.loads(out.read_text())
    calls = CallCounter(counter).calls
    return [
        engine,
        variant,
        len(calls) - RECOVERY_WORKLOAD.model_units,
        len(calls),
        data["launch_to_result"],
        data["process_to_result"],
        data["output"] == RECOVERY_WORKLOAD.expected_output,
    ]


def _q(schema: str | None, table: str) -> str:
    return f'"{schema}"."{table}"' if schema else f'"{table}"'


def _size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool | int | float):
        return 8
    return len(str(value).encode())


if __name__ == "__main__":
    section_main("dbos", run)
