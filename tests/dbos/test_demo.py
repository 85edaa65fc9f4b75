"""`make demo` (`python -m durable_agents.demo`) tells the whole crash-and-recover story in one invocation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.dbos, pytest.mark.slow]


def test_demo_crashes_recovers_and_finishes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DURABLE_AGENTS_CRASH"}
    proc = subprocess.run(
        [sys.executable, "-m", "durable_agents.demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "process 1 was killed (exit code 86)" in out
    assert "found run 'demo-research-run' unfinished and is resuming it" in out
    # Process 1 sent 3 model requests and ran 2 tools; process 2 ran the interrupted tool call and the rest.
    assert out.count("model    request") == 5
    assert [line.strip() for line in out.splitlines() if "research(" in line and "running" in line] == [
        f"tool     research({i}) running ..." for i in range(4)
    ]
    assert "Steps replayed from the journal: 5; run in this process: 4." in out
    assert "each call ran exactly once" in out
    assert (tmp_path / ".demo" / "demo.sqlite").exists()
    assert not (tmp_path / ".demo" / "pending").exists()  # so the next `make demo` starts fresh
