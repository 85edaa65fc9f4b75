"""A hard-killed flow run is resumed; completed model requests and tools are not executed again."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from _pf_support import flow_runs_of, lines, task_runs_of

from durable_agents.testing import CRASH_ENV
from durable_agents.testing._crash import CRASH_EXIT_CODE

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

SCRIPT = Path(__file__).parent / "scripts" / "crash_agent.py"


def _run(*args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_killed_in_tool_2_of_4_resumes_without_re_executing(tmp_path: Path) -> None:
    name = f"crash_{uuid.uuid4().hex[:8]}"
    crashed = _run("start", str(tmp_path), name, crash="call/step@2")
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr[-2000:]
    assert lines(tmp_path / "model.log") == ["model:0", "model:1"]
    assert lines(tmp_path / "tools.log") == ["0"]  # killed as tool 2 started
    [flow_run] = await flow_runs_of(name)
    assert flow_run.state is not None and flow_run.state.is_running()  # a killed run stays RUNNING

    resumed = _run("resume", str(flow_run.id), str(tmp_path), name)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    assert (tmp_path / "output.txt").read_text() == "done: r0, r1, r2, r3"
    # Every model request and every tool ran exactly once over both processes.
    assert lines(tmp_path / "model.log") == ["model:0", "model:1", "model:2", "model:3", "model:4"]
    assert lines(tmp_path / "tools.log") == ["0", "1", "2", "3"]
    [after] = await flow_runs_of(name)
    assert after.id == flow_run.id and after.state is not None and after.state.is_completed()
    names = [t.name for t in await task_runs_of(flow_run.id)]
    assert names.count(f"{name}.toolset.agent.call/step") >= 4
