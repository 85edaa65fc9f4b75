"""One engine of the memory benchmark, in its own process: N sequential runs, resident set size sampled as they go.

`python -m benchmarks._memory_probe --engine local --runs 1000 --warmup 50 --out F` writes the samples as JSON.
With `--tracemalloc 100,400` it also prints the allocations that grew between those two run counts, grouped by
traceback (slow: for finding what grows, not for the report).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ._common import Workload, build_agent

WORKLOAD = Workload(4)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """The current resident set size (`/proc/self/statm`), else the peak one (`getrusage`, where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def cached_runs() -> int:
    """How many runs the unit side's history cache holds (its public count where it has one, as since v1)."""
    from durable_agents._history import HISTORY_CACHE

    cache: Any = HISTORY_CACHE
    runs = getattr(cache, "runs", None)
    return runs if isinstance(runs, int) else len(cache._runs)


def _tool(result_bytes: int) -> Callable[[int], Awaitable[str]]:
    pad = " " + "x" * result_bytes if result_bytes else ""

    async def step(i: int) -> str:
        return f"r{i}{pad}"

    return step


def expected_output(result_bytes: int) -> str:
    pad = " " + "x" * result_bytes if result_bytes else ""
    return "done: " + ", ".join(f"r{i}{pad}" for i in range(WORKLOAD.tool_units))


async def _runner(args: argparse.Namespace) -> Callable[[], Awaitable[Any]]:
    """Build the engine's agent (and start the engine) and return one run."""
    agent_def = build_agent(f"mem_{args.engine.replace('-', '_')}", WORKLOAD, tool=_tool(args.result_bytes))
    if args.engine == "local":
        from durable_agents.local import LocalAgent

        local = LocalAgent(agent_def)
        return lambda: local.run("go")
    if args.engine == "dbos-sqlite":
        from dbos import DBOS

        from durable_agents.dbos import DBOSAgent

        dbos_agent = DBOSAgent(agent_def)
        url = f"sqlite:///{Path(args.workdir) / f'memory_{uuid.uuid4().hex[:6]}.sqlite'}"
        DBOS(config={"name": "durable-agents-memory", "system_database_url": url, "log_level": "WARNING"})
        DBOS.launch()
        return lambda: dbos_agent.run("go")
    if args.engine == "prefect":
        from durable_agents.prefect import PrefectAgent

        prefect_agent = PrefectAgent(agent_def)
        return lambda: prefect_agent.run("go")
    raise SystemExit(f"unknown engine {args.engine!r}")


def _print_growth(first: tracemalloc.Snapshot, second: tracemalloc.Snapshot, runs: int) -> None:
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    stats = second.filter_traces(ignore).compare_to(first.filter_traces(ignore), "traceback")
    total = sum(s.size_diff for s in stats)
    print(f"tracemalloc: {total / 2**20:.2f} MB grew over {runs} runs = {total / runs:.0f} B/run")
    for stat in stats[:15]:
        print(f"--- {stat.size_diff / runs:.0f} B/run, {stat.count_diff / runs:.2f} blocks/run")
        for line in stat.traceback.format()[-14:]:
            print("   ", line)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", required=True, choices=["local", "dbos-sqlite", "prefect"])
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--result-bytes", type=int, default=0, help="bytes of padding in each tool result")
    parser.add_argument("--workdir", default="/tmp")
    parser.add_argument("--out", default=None)
    parser.add_argument("--tracemalloc", default=None, help="two run counts to compare, e.g. 100,400")
    args = parser.parse_args()
    run = await _runner(args)
    want = expected_output(args.result_bytes)

    async def one() -> None:
        result = await run()
        if result.output != want:
            raise AssertionError(f"unexpected output {result.output[:80]!r}")

    for _ in range(args.warmup):
        await one()
    compare = [int(n) for n in args.tracemalloc.split(",")] if args.tracemalloc else []
    snapshots: list[tracemalloc.Snapshot] = []
    if compare:
        tracemalloc.start(25)
    every = max(1, args.runs // args.samples)
    gc.collect()
    samples: list[dict[str, float]] = [{"runs": 0, "rss_mb": rss_mb(), "cached_runs": cached_runs()}]
    t0 = time.perf_counter()
    for n in range(1, args.runs + 1):
        await one()
        if n in compare:
            gc.collect()
            snapshots.append(tracemalloc.take_snapshot())
        if n % every == 0 or n == args.runs:
            gc.collect()
            samples.append({"runs": n, "rss_mb": rss_mb(), "cached_runs": cached_runs()})
            print(f"[memory {args.engine}] {samples[-1]}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t0
    if len(snapshots) == 2:
        _print_growth(snapshots[0], snapshots[1], compare[1] - compare[0])
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"samples": samples, "seconds": elapsed, "warmup": args.warmup}, f)
    sys.stdout.flush()
    # DBOS's and Prefect's background threads can hang at interpreter exit; the result is written.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
