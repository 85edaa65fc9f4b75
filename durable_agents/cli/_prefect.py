"""Runs on Prefect, read with Prefect's client from the server of `PREFECT_API_URL`.

A `PrefectAgent`'s runs are flow runs of the flow named after the agent, started with its `run_args` parameter;
its units are their task runs, named by label (`<agent>.model`, `<agent>.toolset.<id>.call/<tool>`, ...).
Prefect records a task run's attempts and times; its result is read from the result storage when this machine
can reach it, and task inputs are not stored.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from ..exceptions import ConfigurationError
from ._runs import RunDetail, RunRow, UnitRow

__all__ = ["PrefectBackend"]

_SCAN_FACTOR = 5


class PrefectBackend:
    """Reads `PrefectAgent` runs from the Prefect server of `PREFECT_API_URL`, and resumes them with the agent."""

    engine = "prefect"

    def __init__(self, app: str | None) -> None:
        self.app = app

    async def list_runs(self, limit: int, agent: str | None) -> list[RunRow]:
        """The newest flow runs of agents' flows, newest first."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowFilter, FlowFilterId, FlowFilterName
        from prefect.client.schemas.sorting import FlowRunSort

        from ..prefect._agent import RUN_ARGS_PARAMETER

        async with get_client() as client:
            flow_runs = await client.read_flow_runs(
                flow_filter=None if agent is None else FlowFilter(name=FlowFilterName(any_=[agent])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=limit * _SCAN_FACTOR,
            )
            ours = [r for r in flow_runs if agent is not None or RUN_ARGS_PARAMETER in r.parameters][:limit]
            flow_ids = list({r.flow_id for r in ours})
            flows = await client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids))) if ours else []
        names = {f.id: f.name for f in flows}
        return [_run_row(r, names.get(r.flow_id, "?")) for r in ours]

    async def show_run(self, run_id: str) -> RunDetail:
        """The flow run and its task runs."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
        from prefect.client.schemas.sorting import TaskRunSort
        from prefect.exceptions import ObjectNotFound

        async with get_client() as client:
            try:
                flow_run = await client.read_flow_run(UUID(run_id))
            except (ValueError, ObjectNotFound):
                raise ConfigurationError(
                    f"The Prefect server at {client.api_url} has no flow run {run_id!r}. Fix: take an id from "
                    "`durable-agents runs list --engine prefect` and check PREFECT_API_URL."
                ) from None
            flow = await client.read_flow(flow_run.flow_id)
            task_runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            )
        detail = RunDetail(_run_row(flow_run, flow.name))
        detail.facts = {"flow": flow.name, "flow run name": flow_run.name, "tags": ", ".join(flow_run.tags) or "-"}
        for task_run in task_runs:
            state = task_run.state
            detail.units.append(
                UnitRow(
                    name=task_run.name,
                    status=str(state.name) if state is not None else "-",
                    attempts=task_run.run_count,
                    start=task_run.start_time,
                    end=task_run.end_time,
                    output_bytes=await _result_size(state),
                )
            )
        return detail

    async def resume_run(self, run_id: str, *, force: bool) -> str:
        """`PrefectAgent.resume(run_id)` in this process, with the agent imported from `--app`."""
        from ..prefect import PrefectAgent

        if self.app is None:
            raise ConfigurationError(
                f"Resuming Prefect flow run {run_id} runs the agent's flow in this process, so it needs the agent. "
                "Fix: pass `--app module:variable`, the PrefectAgent as your code defines it (`myapp.agents:agent`)."
            )
        agent = _import(self.app)
        if not isinstance(agent, PrefectAgent):
            raise ConfigurationError(
                f"`--app {self.app}` is a {type(agent).__name__}, not a PrefectAgent. Fix: name the module-level "
                "PrefectAgent that runs this flow."
            )
        result = await agent.resume(run_id, stale_after=0 if force else None)
        return f"Flow run {run_id} of agent {agent.name!r} resumed and finished: {result.output!r}"


def _run_row(flow_run: Any, flow_name: str) -> RunRow:
    state = flow_run.state
    return RunRow(
        run_id=str(flow_run.id),
        agent=flow_name,
        status=str(state.name) if state is not None else "-",
        start=flow_run.start_time or flow_run.expected_start_time,
        end=flow_run.end_time,
    )


async def _result_size(state: Any) -> int | None:
    """Size of a completed task run's stored result (our units return JSON text), if storage is reachable here."""
    if state is None or not state.is_completed():
        return None
    try:
        value = await state.aresult(raise_on_failure=False)
    except Exception:
        return None  # result storage of another machine, or expired
    return len(value.encode()) if isinstance(value, str) else None


def _import(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"`--app {path}` is not `module:variable`. Fix: e.g. `--app myapp.agents:agent`.")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"`--app {path}`: cannot import {module_name!r} ({exc}). Fix: run from your project's directory or "
            "install it in this environment."
        ) from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(
            f"`--app {path}`: module {module_name!r} has no {attribute!r}. Fix: name the module-level PrefectAgent."
        ) from None
