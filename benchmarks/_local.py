"""Local engine section: the core's own overhead (units, codec, delta history) with no engine underneath."""

from __future__ import annotations

import argparse

from durable_agents.local import LocalAgent

from ._common import build_agent, latency_tables, output_check, ratio, round_robin
from ._section import Mode, SectionResult, section_main
from ._workloads import all_workloads


async def run(mode: Mode, args: argparse.Namespace, result: SectionResult) -> None:
    workloads = {w.key: w for w in all_workloads()}
    plain = {key: build_agent(f"plain_{key}", w) for key, w in workloads.items()}
    ours = {key: LocalAgent(build_agent(f"ours_{key}", w)) for key, w in workloads.items()}
    result.meta["server"] = "none (units awaited in-process)"

    async def latency() -> None:
        results: dict[str, dict[str, dict[str, float]]] = {}
        for w in mode.workloads:
            key = w.key
            variants = {
                "plain": lambda key=key: plain[key].run("go"),
                "ours": lambda key=key: ours[key].run("go"),
            }
            check = output_check({"plain": w.expected_output, "ours": w.expected_output})
            samples = await round_robin(variants, mode.iterations * 2, mode.warmup, check)
            results[w.label] = {v: s.summary() for v, s in samples.items()}
            med = {v: s["median_ms"] for v, s in results[w.label].items()}
            result.metrics[f"local.{key}.ours_over_plain"] = ratio(med["ours"], med["plain"])
        result.tables += latency_tables(
            "latency",
            "Local engine (no durability)",
            results,
            notes=[
                "The core alone: every model request and tool call goes through the unit contract (encode, "
                "delta history, decode) but is awaited in-process. `ours / plain` is the core's own cost; "
                "pydantic-ai has no such mode (n/a).",
            ],
        )

    await result.part("latency", latency)


if __name__ == "__main__":
    section_main("local", run)
