"""The benchmark harness must not rot: its smoke mode runs every section once and writes a well-formed report.

No timing assertions: speed lives in benchmarks/RESULTS.md, not in tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.dbos, pytest.mark.temporal, pytest.mark.timeout(240)]


def test_smoke_report_has_every_section(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out.read_text()

    for heading in (
        "## Machine and versions",
        "## Targets",
        "## 1. Per-run latency",
        "## 2. Temporal history size",
        "## 3. DBOS system-table rows and bytes per run",
        "## 4. Throughput",
        "## 5. Recovery after a crash",
        "## 6. Memory over many runs",
        "## Errors",
    ):
        assert heading in report, heading
    assert "None: every section ran to the end." in report, report[report.index("## Errors") :]

    # Every engine of the smoke run measured each variant.
    for title in (
        "### Local engine (no durability): per-run latency",
        "### DBOS, SQLite: per-run latency",
        "### Temporal (dev server): per-run latency",
    ):
        assert title in report, title
    for variant in ("plain", "ours", "pydantic-ai", "floor"):
        assert re.search(rf"^\| K=1 \| {re.escape(variant)} \| [0-9.,]+ \|", report, re.M), variant

    # History sizes are measured for both wrappers, and recovery re-sent no model request.
    assert re.search(r"^\| 8 \| [0-9,]+ \| [0-9]+ \| [0-9,]+ \| [0-9,]+ \| [0-9]+ \|", report, re.M)
    assert re.search(r"^\| DBOS, SQLite \| ours \| 0 \| 5 \| [0-9.]+ \| [0-9.]+ \| yes \|$", report, re.M)
    # Memory: RSS sampled over sequential runs on both engines (numbers are reported, never asserted).
    for engine in ("local", "DBOS, SQLite"):
        assert re.search(rf"^\| {re.escape(engine)} \| 3 \| 20 \| [0-9.]+ \| [0-9.]+ \|", report, re.M), engine
    # System tables: ours journals one more step per tool call than pydantic-ai's default.
    assert re.search(r"^\| K=1 \| 6 \| [0-9,]+ \| 5 \| [0-9,]+ \| 6 \|", report, re.M)
