"""Deploys of a DBOS app, for the version tests: `python deploy_app.py <mode> <app dir> <db url> <dir> [id]`.

`write_app(app_dir, ...)` writes one version of the application's code, `app.py` (an agent with a tool, and a
workflow of the application's own); this driver imports the `app.py` of `<app dir>`, builds DBOS without an
`application_version` (so the default applies), launches, and:

- `version`: prints the application version;
- `run <id>`: runs the agent with `run_id=<id>` (crashes where `DURABLE_AGENTS_CRASH` says);
- `status <id>`: prints the run's status and application version (pending runs of other versions stay pending);
- `fork <id>`: moves the pending run onto this version as docs/dbos.md shows, and waits for its result.

The model counts its requests in `<dir>/model_calls` and the tool its executions in `<dir>/tool_calls`.
Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from dbos import DBOS, SetWorkflowID

from durable_agents.dbos import DBOSAgent, application_version
from durable_agents.testing import inject_crash

APP_NAME = "durable-agents-deploy"

_APP = '''\
"""One version of the application's code (written by tests/dbos/deploy_app.py)."""

from pathlib import Path

from dbos import DBOS
from pydantic_ai import Agent

from durable_agents.testing import CallCounter, tool_loop_model
{imports}


def build_agent(workdir: Path) -> Agent[None, str]:
    agent = Agent(
        tool_loop_model(4, counter=CallCounter(workdir / "model_calls")), name="deployed", instructions={instructions!r}
    )

    @agent.tool_plain
    def step(i: int) -> str:
        with (workdir / "tool_calls").open("a") as f:
            f.write(f"{{i}}\\n")
        return {tool_result}

    return agent


@DBOS.workflow()
def housekeeping() -> str:
    return {workflow_result!r}
'''


def write_app(
    app_dir: Path,
    *,
    tool_result: str = 'f"r{i}"',
    instructions: str = "Be brief.",
    workflow_result: str = "tidy",
    imports: str = "",
) -> Path:
    """Write one version of the app's code to `app_dir/app.py`; `tool_result` is the tool's return expression."""
    app_dir.mkdir(parents=True, exist_ok=True)
    source = _APP.format(
        tool_result=tool_result, instructions=instructions, workflow_result=workflow_result, imports=imports
    )
    (app_dir / "app.py").write_text(textwrap.dedent(source))
    return app_dir


async def move_pending_runs() -> list[str]:
    """The procedure of docs/dbos.md: fork each pending agent run of another version onto this one."""
    moved: list[str] = []
    for run in await DBOS.list_workflows_async(status="PENDING", name="deployed.run"):
        if run.app_version == DBOS.application_version:
            continue
        steps = await DBOS.list_workflow_steps_async(run.workflow_id)
        next_step = max((s["function_id"] for s in steps), default=0) + 1
        with SetWorkflowID(f"{run.workflow_id}-moved"):
            handle = await DBOS.fork_workflow_async(
                run.workflow_id, next_step, application_version=DBOS.application_version
            )
        await DBOS.cancel_workflow_async(run.workflow_id)
        moved.append(handle.workflow_id)
    return moved


def main() -> None:
    mode, app_dir, url, workdir = sys.argv[1:5]
    sys.path.insert(0, app_dir)
    app: Any = importlib.import_module("app")
    dbos_agent = DBOSAgent(app.build_agent(Path(workdir)))
    DBOS(config={"name": APP_NAME, "system_database_url": url, "log_level": "WARNING"})
    inject_crash()
    DBOS.launch()
    report: dict[str, object] = {"version": DBOS.application_version, "expected": application_version(APP_NAME)}
    if mode == "run":
        report["output"] = asyncio.run(dbos_agent.run("go", run_id=sys.argv[5])).output
    elif mode == "status":
        status = DBOS.get_workflow_status(sys.argv[5])
        assert status is not None
        report["status"] = status.status
        report["app_version"] = status.app_version
    elif mode == "fork":

        async def fork() -> list[str]:
            moved = await move_pending_runs()
            return [(await (await DBOS.retrieve_workflow_async(wid)).get_result()).output for wid in moved]

        report["outputs"] = asyncio.run(fork())
    print(json.dumps(report), flush=True)
    DBOS.destroy()


if __name__ == "__main__":
    main()
