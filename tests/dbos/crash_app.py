"""A DBOS app for the crash tests, run in subprocesses: `python crash_app.py <mode> <db url> <workflow id> <dir>`.

Modes:

- `run`: run the agent with the given workflow id as its `run_id` (crashes where `DURABLE_AGENTS_CRASH` says);
  run again, it is a restarted script that attaches to the run of that id;
- `resume`: launch DBOS, which recovers this executor's pending runs, and wait for the run's result;
- `takeover <executor>`: launch as another executor, wait for a line on stdin, then recover the pending
  runs of `<executor>` with DBOS's executor-recovery API and wait for the run's result.

`PARALLEL=n` makes each round n parallel tool calls. The model counts its requests in `<dir>/model_calls`
and the tool its executions in `<dir>/tool_calls`. `AGENT=analyst` runs pydantic-ai's data-analyst example
(`tests/parity/data_analyst.py`) instead, whose tools pass results to each other in deps.
`DURABLE_AGENTS_TEST_SPANS=<file>` appends every finished span to that file (the run starts under a span `caller`).
Prints one JSON line: the output, the unit labels this process executed, the ids of the agent's workflows and
(data analyst) the tools this process ran.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from dbos import DBOS
from opentelemetry import trace
from pydantic_ai import Agent

from durable_agents.dbos import DBOSAgent
from durable_agents.testing import CallCounter, inject_crash, record_units, tool_loop_model
from tests.parity import data_analyst
from tests.telemetry_support import install_file_exporter

ROUNDS = 4


def build_agent(workdir: Path, parallel: int = 1) -> Agent[None, str]:
    """The agent under test: 4 rounds of `parallel` tool calls, then an answer listing their results."""
    model = tool_loop_model(ROUNDS, parallel=parallel, counter=CallCounter(workdir / "model_calls"))
    agent = Agent(model, name="crashy")

    @agent.tool_plain
    def step(i: int) -> str:
        with (workdir / "tool_calls").open("a") as f:
            f.write(f"{i}\n")
        return f"r{i}"

    return agent


def main() -> None:
    mode, url, workflow_id, workdir = sys.argv[1:5]
    executor = sys.argv[5] if mode == "takeover" else os.environ.get("EXECUTOR_ID", "local")
    analyst = os.environ.get("AGENT") == "analyst"
    agent = data_analyst.analyst_agent if analyst else build_agent(Path(workdir), int(os.environ.get("PARALLEL", "1")))
    dbos_agent = DBOSAgent(agent)
    run_kwargs: dict[str, Any] = {"deps": data_analyst.AnalystAgentDeps()} if analyst else {}
    config = {
        "name": "durable-agents-crash",
        "system_database_url": url,
        "application_version": "crash-test",
        "executor_id": "takeover" if mode == "takeover" else executor,
        "log_level": "WARNING",
    }
    DBOS(config=config)  # type: ignore[arg-type]
    install_file_exporter()
    inject_crash()
    with record_units() as units:
        DBOS.launch()
        if mode == "run":
            prompt = data_analyst.PROMPT if analyst else "go"
            with trace.get_tracer("tests").start_as_current_span("caller"):
                output = asyncio.run(dbos_agent.run(prompt, run_id=workflow_id, **run_kwargs)).output
        elif mode == "resume":
            output = DBOS.retrieve_workflow(workflow_id).get_result().output
        else:
            print(json.dumps({"ready": True}), flush=True)
            sys.stdin.readline()
            handles = DBOS._recover_pending_workflows([executor])  # pyright: ignore[reportPrivateUsage]
            assert [h.workflow_id for h in handles] == [workflow_id], handles
            output = handles[0].get_result().output
    workflows = sorted(w.workflow_id for w in DBOS.list_workflows(name=dbos_agent.workflow_name))
    report = {"output": output, "executed": units.labels, "workflows": workflows, "tools": data_analyst.TOOL_RUNS}
    print(json.dumps(report), flush=True)
    DBOS.destroy()


if __name__ == "__main__":
    main()
