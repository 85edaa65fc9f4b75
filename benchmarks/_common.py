"""What every section shares: the workload, the round-robin timer, statistics and result tables."""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic_ai import Agent

from durable_agents.testing import CallCounter, tool_loop_model

# pydantic-ai's wrappers are deprecated upstream in favour of capabilities; we measure them as users run them.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pydantic_ai\..*")
warnings.filterwarnings("ignore", message=r".*is deprecated in favor of.*")

CRASH_AT_ENV = "DURABLE_AGENTS_BENCH_CRASH_AT"
"""Set to a tool call index `i` in a recovery subprocess: the tool kills the process when called with it."""
CRASH_EXIT = 86


@dataclass(frozen=True)
class Workload:
    """K sequential model responses asking for `parallel` tool calls each, then a final answer."""

    k: int
    parallel: int = 1

    @property
    def label(self) -> str:
        return f"K={self.k}" if self.parallel == 1 else f"K={self.k}x{self.parallel}"

    @property
    def key(self) -> str:
        return f"k{self.k}" if self.parallel == 1 else f"k{self.k}p{self.parallel}"

    @property
    def model_units(self) -> int:
        return self.k + 1

    @property
    def tool_units(self) -> int:
        return self.k * self.parallel

    @property
    def expected_output(self) -> str:
        return "done: " + ", ".join(f"r{i}" for i in range(self.tool_units))


async def step(i: int) -> str:
    """The trivial tool: returns its argument as a string (and crashes the process when told to)."""
    crash_at = os.environ.get(CRASH_AT_ENV)
    if crash_at is not None and int(crash_at) == i:
        os._exit(CRASH_EXIT)
    return f"r{i}"


def build_agent(
    name: str, workload: Workload, *, counter: CallCounter | None = None, tool: Any = step
) -> Agent[None, str]:
    """The benchmark agent: a scripted `FunctionModel` and one trivial tool named `step`."""
    agent = Agent(tool_loop_model(workload.k, parallel=workload.parallel, counter=counter), name=name)
    agent.tool_plain(name="step")(tool)
    return agent


# ----------------------------------------------------------------------------------------------------- timing


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list[float])
    cpu: list[float] = field(default_factory=list[float])

    def summary(self) -> dict[str, float]:
        return {
            "median_ms": median(self.wall) * 1000,
            "p90_ms": p90(self.wall) * 1000,
            "cpu_ms": median(self.cpu) * 1000,
            "n": len(self.wall),
        }


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def p90(xs: Sequence[float]) -> float:
    if not xs:
        return float("nan")
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=10, method="inclusive")[-1]


async def round_robin(
    variants: Mapping[str, Callable[[], Awaitable[Any]]],
    iterations: int,
    warmup: int = 1,
    check: Callable[[str, Any], None] | None = None,
) -> dict[str, Samples]:
    """Time each variant `iterations` times, interleaved (the order rotates every round) so noise hits all alike.

    Returns wall and process-CPU seconds per run of each variant. `check` validates every result.
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            result = await variants[name]()
            if check is not None:
                check(name, result)
    samples = {name: Samples() for name in names}
    for i in range(iterations):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            c0, t0 = time.process_time(), time.perf_counter()
            result = await variants[name]()
            t1, c1 = time.perf_counter(), time.process_time()
            samples[name].wall.append(t1 - t0)
            samples[name].cpu.append(c1 - c0)
            if check is not None:
                check(name, result)
    return samples


def output_check(expected: Mapping[str, str]) -> Callable[[str, Any], None]:
    """A `check` for `round_robin`: every agent variant must produce its workload's output."""

    def check(name: str, result: Any) -> None:
        want = expected.get(name)
        if want is None:
            return
        got = getattr(result, "output", result)
        if got != want:
            raise AssertionError(f"variant {name!r} returned {got!r}, expected {want!r}")

    return check


# ----------------------------------------------------------------------------------------------------- results


@dataclass
class Table:
    """One table of the report."""

    section: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list[str])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def latency_tables(
    section: str,
    engine: str,
    results: Mapping[str, Mapping[str, dict[str, float]]],
    floor_variant: str = "floor",
    notes: Sequence[str] = (),
) -> list[Table]:
    """Per workload: median/p90/CPU of each variant, then the ratios the issue asks for."""
    variants: list[str] = []
    for per in results.values():
        for v in per:
            if v not in variants:
                variants.append(v)
    rows: list[list[Any]] = []
    for workload, per in results.items():
        for v in variants:
            s = per.get(v)
            if s is None:
                continue
            rows.append([workload, v, s["median_ms"], s["p90_ms"], s["cpu_ms"], int(s["n"])])
    main = Table(
        section,
        f"{engine}: per-run latency",
        ["workload", "variant", "median ms", "p90 ms", "CPU ms/run", "runs"],
        rows,
        list(notes),
    )
    ratio_rows: list[list[Any]] = []
    for workload, per in results.items():
        ours = per.get("ours", {}).get("median_ms", float("nan"))
        row: list[Any] = [workload]
        row.append(ratio(ours, per.get(floor_variant, {}).get("median_ms", float("nan"))))
        row.append(ratio(ours, per.get("pydantic-ai", {}).get("median_ms", float("nan"))))
        row.append(ratio(ours, per.get("plain", {}).get("median_ms", float("nan"))))
        ours_cpu = per.get("ours", {}).get("cpu_ms", float("nan"))
        row.append(ratio(ours_cpu, per.get("pydantic-ai", {}).get("cpu_ms", float("nan"))))
        ratio_rows.append(row)
    ratios = Table(
        section,
        f"{engine}: ratios (medians)",
        ["workload", f"ours / {floor_variant}", "ours / pydantic-ai", "ours / plain", "CPU ours / pydantic-ai"],
        ratio_rows,
    )
    return [main, ratios]


def fit_quadratic(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares fit of y = a + b*x + c*x^2 (normal equations, solved by Cramer's rule)."""
    s = [sum(x**p for x in xs) for p in range(5)]
    t = [sum(y * x**p for x, y in zip(xs, ys, strict=True)) for p in range(3)]
    m = [[s[0], s[1], s[2]], [s[1], s[2], s[3]], [s[2], s[3], s[4]]]

    def det(a: list[list[float]]) -> float:
        return (
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        )

    d = det(m)
    if d == 0:
        return float("nan"), float("nan"), float("nan")
    coeffs: list[float] = []
    for col in range(3):
        mc = [row[:] for row in m]
        for r in range(3):
            mc[r][col] = t[r]
        coeffs.append(det(mc) / d)
    return coeffs[0], coeffs[1], coeffs[2]
