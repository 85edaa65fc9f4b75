"""The durable_agents demo: an agent run that survives its process being killed (`make demo`).

A research agent makes 4 tool calls, one model request between each, on DBOS with a SQLite
journal in `.demo/` (a scripted model: no API key, no network). The demo runs the agent in a child
process and kills it (`os._exit`, like a power cut) as the 3rd tool call starts. Then it starts a
new child: `DBOS.launch()` finds the unfinished run in the journal and resumes it. The model
requests and tool calls that had completed are replayed from the journal, not sent or run again.

Press Ctrl-C during a run to kill it yourself: the next `make demo` resumes that run. Otherwise
every `make demo` starts fresh.

```text
python -m durable_agents.demo            # the whole story
python -m durable_agents.demo --child    # one process of the app (what the demo runs twice)
```
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

DEMO_DIR = Path(".demo")
DATABASE = DEMO_DIR / "demo.sqlite"
PENDING = DEMO_DIR / "pending"  # present while a started run has not finished
WORKFLOW_ID = "demo-research-run"
# The exit code of durable_agents.testing's crash injection (not imported here: the parent stays light).
CRASH_EXIT_CODE = 86
INTERRUPTED = 130  # the exit code of a process stopped by Ctrl-C
AGENT_NAME = "researcher"
TOOL_CALL = f"{AGENT_NAME}.toolset.agent.call/research"
FACTS = [
    "DBOS journals every step in its system database",
    "a recovered workflow replays completed steps from the journal",
    "SQLite is enough on one machine; PostgreSQL for many",
    "tool calls are steps too, with no decorator needed",
]


def main() -> int:
    """Run the demo: one child process that is killed mid-run, then one that recovers and finishes."""
    if "--child" in sys.argv:
        return child()
    resuming = PENDING.exists() and DATABASE.exists()
    if not resuming:
        shutil.rmtree(DEMO_DIR, ignore_errors=True)
        DEMO_DIR.mkdir()
        PENDING.touch()
    print(f"durable_agents demo: a {len(FACTS)}-step research agent on DBOS, journal in {DATABASE}")
    print("(scripted model from durable_agents.testing: no API key, no network)\n")
    try:
        if resuming:
            print("A previous demo run was interrupted; this process resumes it.")
            return finish(start_child(crash_at=None))
        print(f"Process 1 runs the agent and is killed as tool call 3 of {len(FACTS)} starts.")
        code = start_child(crash_at=3)
        if code != CRASH_EXIT_CODE:
            return finish(code)  # Ctrl-C, or a real failure
        print(f"\n  >>> process 1 was killed (exit code {code}); the run is left half done in the journal.\n")
        print("Process 2 launches DBOS on the same journal, which resumes the run.")
        return finish(start_child(crash_at=None))
    except KeyboardInterrupt:
        print("\nInterrupted: the run is left half done in the journal. Run `make demo` again to resume it.")
        return INTERRUPTED


def start_child(crash_at: int | None) -> int:
    """Run `--child` in a new process, with crash injection at tool call `crash_at`."""
    env = dict(os.environ)
    env.pop("DURABLE_AGENTS_CRASH", None)
    if crash_at is not None:
        env["DURABLE_AGENTS_CRASH"] = f"{TOOL_CALL}@{crash_at}"
    proc = subprocess.Popen([sys.executable, "-m", "durable_agents.demo", "--child"], env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.wait()  # the child got the Ctrl-C too and dies at once
        raise


def finish(code: int) -> int:
    """Report how the last child ended; forget the run once it has finished."""
    if code == INTERRUPTED:
        raise KeyboardInterrupt
    if code == 0:
        PENDING.unlink(missing_ok=True)
        print("\nDone. `make demo` again starts a fresh run.")
    else:
        print(f"\nThe child process failed with exit code {code}.")
    return code


# ----------------------------------------------------------------------------- the app (child process)


def _die(signum: int, frame: object) -> None:
    os._exit(INTERRUPTED)


def child() -> int:
    """One process of the durable app: build the agent, launch DBOS, start or resume the run."""
    # Ctrl-C kills the process on the spot, like a crash: DBOS must not get a chance to tidy up.
    signal.signal(signal.SIGINT, _die)
    started = time.time()
    print(f"\n[pid {os.getpid()}] importing pydantic-ai and DBOS ...", flush=True)

    from dbos import DBOS, SetWorkflowID
    from pydantic_ai import Agent
    from pydantic_ai.run import AgentRunResult

    from durable_agents.dbos import DBOSAgent, StepConfig
    from durable_agents.testing import CallCounter, inject_crash, tool_loop_model

    class PrintingCounter(CallCounter):
        def bump(self, label: str) -> None:
            super().bump(label)
            print(f"  model    request {len(self.calls)} sent to the model", flush=True)

    model = tool_loop_model(len(FACTS), tool_name="research", counter=PrintingCounter(DEMO_DIR / "model_calls"))
    agent = Agent(model, name=AGENT_NAME, instructions="Research durable execution, one fact per tool call.")

    @agent.tool_plain
    def research(i: int) -> str:
        """Look up fact number `i` (slowly, like a real API)."""
        print(f"  tool     research({i}) running ...", flush=True)
        time.sleep(0.5)
        with (DEMO_DIR / "tool_calls").open("a") as f:
            f.write(f"{i}\n")
        return FACTS[i]

    # Durable objects first, then DBOS.launch(): DBOS recovers only workflows it knows at launch.
    dbos_agent = DBOSAgent(agent, model_step_config=StepConfig(retries_allowed=True, max_attempts=3))
    DBOS(
        config={
            "name": "durable-agents-demo",
            "system_database_url": f"sqlite:///{DATABASE}",
            "application_version": "demo",  # recovery needs the same version in the new process
            "log_level": "WARNING",
        }
    )
    inject_crash()  # reads DURABLE_AGENTS_CRASH, set by the demo for the first process only
    DBOS.launch()

    if DBOS.get_workflow_status(WORKFLOW_ID) is None:
        print(f"[pid {os.getpid()}] starting run {WORKFLOW_ID!r}", flush=True)
        with SetWorkflowID(WORKFLOW_ID):
            result = asyncio.run(dbos_agent.run("What makes an agent durable?"))
    else:
        print(f"[pid {os.getpid()}] DBOS.launch() found run {WORKFLOW_ID!r} unfinished and is resuming it", flush=True)
        result = cast(AgentRunResult[str], DBOS.retrieve_workflow(WORKFLOW_ID).get_result())

    print(f"\nFinal answer: {result.output}\n")
    print_journal(DBOS.list_workflow_steps(WORKFLOW_ID), started)
    DBOS.destroy()
    return 0


def print_journal(steps: Sequence[Mapping[str, Any]], started: float) -> None:
    """Print the run's DBOS steps, each marked as replayed from the journal or run by this process."""
    print(f"Journal of {WORKFLOW_ID!r} (DBOS.list_workflow_steps):")
    replayed = ran = 0
    for info in steps:
        completed = (info.get("completed_at_epoch_ms") or 0) / 1000
        name = str(info["function_name"])
        if completed and completed < started:
            note = "replayed from the journal (not sent / not run again)"
            replayed += 1
        else:
            note = "ran in this process"
            ran += 1
        print(f"  {info['function_id']:>3}  {name:<42} {note}")
    print(f"\nSteps replayed from the journal: {replayed}; run in this process: {ran}.")
    calls = (DEMO_DIR / "tool_calls").read_text().split()
    once = "each call ran exactly once" if len(calls) == len(set(calls)) else "some calls ran twice!"
    print(f"research() executions, all processes together: {', '.join(calls)} ({once}).")


if __name__ == "__main__":
    sys.exit(main())
