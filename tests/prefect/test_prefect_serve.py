"""A module-level PrefectAgent served on an interval schedule fires, and its runs complete with the agent's output."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import cloudpickle
import pytest
from _pf_support import flow_runs_of, task_runs_of
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun

from durable_agents.prefect import PrefectAgent
from durable_agents.testing import tool_loop_model

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

SCRIPT = Path(__file__).parent / "scripts" / "served_agent.py"


def test_prefect_agent_pickles_by_reference() -> None:
    from pydantic_ai import Agent

    prefect_agent = PrefectAgent(Agent(tool_loop_model(1), name=f"pickled_{uuid.uuid4().hex[:8]}"))
    assert cloudpickle.loads(cloudpickle.dumps(prefect_agent)) is prefect_agent
    assert cloudpickle.loads(cloudpickle.dumps(prefect_agent.flow)).fn is not None


async def _completed(flow_name: str, deadline: float) -> FlowRun:
    """The first completed run of `flow_name` started by its deployment (not a subflow run of another flow)."""
    while time.monotonic() < deadline:
        for run in await flow_runs_of(flow_name):
            if run.deployment_id is None:
                continue  # e.g. the agent's subflow runs inside the scheduled user flow
            if run.state is not None and run.state.is_completed():
                return run
            if run.state is not None and run.state.is_final():
                pytest.fail(f"{flow_name} run ended {run.state.type}: {run.state.message}")
        await asyncio.sleep(1)
    states = [(r.name, r.state_type, r.expected_start_time) for r in await flow_runs_of(flow_name)]
    pytest.fail(f"no completed run of {flow_name} in time; runs: {states}")


async def test_scheduled_deployments_fire_and_complete(tmp_path: Path) -> None:
    name = f"served_{uuid.uuid4().hex[:8]}"
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, str(SCRIPT), "20"],
        env={**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "1", "SERVED_AGENT_NAME": name},
        cwd=SCRIPT.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 100
        user_run = await _completed(f"report_{name}", deadline)
        agent_run = await _completed(name, deadline)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        print((tmp_path / "serve.log").read_text()[-6000:])

    assert user_run.deployment_id is not None and agent_run.deployment_id is not None
    assert user_run.state is not None
    async with get_client():
        assert await user_run.state.aresult() == "done: tick0, tick1"
    # The agent ran as a subflow of the scheduled user flow, its units as tasks named after them.
    subflows = [r for r in await flow_runs_of(name) if r.parent_task_run_id is not None]
    assert subflows
    names = [t.name for t in await task_runs_of(subflows[0].id)]
    assert names == [f"{name}.model", f"{name}.toolset.agent.call/step"] * 2 + [f"{name}.model"]
