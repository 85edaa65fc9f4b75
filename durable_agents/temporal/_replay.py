"""Checking, before a deploy, that new workflow code still replays the histories of running and recent runs.

Temporal replays a workflow's history through the current code whenever a worker picks the run up
again (after a restart, a deploy, or a cache eviction). If the code now schedules different units
(a renamed tool, another toolset id, one more model request), replay fails with a nondeterminism
error and the run is stuck until the code is fixed. `check_replay` finds that before the deploy, on
the workflows that the server really has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Plugin, Replayer

from ..exceptions import ReplayDivergenceError
from ._plugin import DurableAgentsPlugin

__all__ = ["ReplayFailure", "ReplayReport", "check_replay"]


@dataclass(frozen=True)
class ReplayFailure:
    """The first workflow whose history the new code did not replay."""

    workflow_id: str
    run_id: str
    workflow_type: str
    error: Exception
    """What the replay raised: usually a `temporalio.workflow.NondeterminismError` naming the unit that differs."""


@dataclass(frozen=True)
class ReplayReport:
    """What [`check_replay`][durable_agents.temporal.check_replay] replayed, and the first divergence."""

    query: str
    """The visibility query the workflows were listed with."""
    replayed: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    """`(workflow id, run id)` of every history replayed, in order (the failing one included)."""
    failure: ReplayFailure | None = None
    """The first divergence; `None` when every history replayed."""

    @property
    def ok(self) -> bool:
        """Whether every history replayed."""
        return self.failure is None


async def check_replay(
    client: Client,
    workflows: Sequence[type[Any]],
    *,
    workflow_types: Sequence[str] | None = None,
    query: str | None = None,
    limit: int = 50,
    plugins: Sequence[Plugin] | None = None,
    raise_on_divergence: bool = True,
) -> ReplayReport:
    """Replay the histories of running and recent workflows against `workflows`, stopping at the first divergence.

    Run it with the code you are about to deploy (in CI, or a pre-deploy job with read access to the namespace):

    ```python
    report = await check_replay(client, [GeographyWorkflow, ResearchWorkflow], limit=100)
    print(f"{len(report.replayed)} histories replay")
    ```

    Args:
        client: A client of the namespace that runs the workflows.
        workflows: The workflow classes of the new code, as the worker will register them.
        workflow_types: The workflow type names to list; default: the types of `workflows`.
        query: A visibility query choosing the workflows instead (e.g.
            `"WorkflowType = 'ChatWorkflow' AND ExecutionStatus = 'Running'"`); overrides `workflow_types`.
        limit: How many workflows to replay at most, the most recently started first.
        plugins: The replayer's plugins; default: `DurableAgentsPlugin()` (the data converter, sandbox
            pass-through modules and failure types the workers use). Pass your worker's plugins if it has more.
        raise_on_divergence: Raise [`ReplayDivergenceError`][durable_agents.exceptions.ReplayDivergenceError]
            on the first divergence instead of returning it in the report.

    Returns:
        Which histories were replayed, and the first divergence, if any.

    Raises:
        ReplayDivergenceError: A history did not replay (only with `raise_on_divergence`).
    """
    if query is None:
        types = list(workflow_types) if workflow_types is not None else [_type_name(cls) for cls in workflows]
        query = " OR ".join(f"WorkflowType = '{name}'" for name in types)
    replayer = Replayer(
        workflows=workflows,
        plugins=list(plugins) if plugins is not None else [DurableAgentsPlugin()],
        data_converter=client.data_converter,
    )
    histories = client.list_workflows(query, limit=limit).map_histories()
    replayed: list[tuple[str, str]] = []
    failure: ReplayFailure | None = None
    async with replayer.workflow_replay_iterator(histories) as results:
        async for result in results:
            history: WorkflowHistory = result.history
            replayed.append((history.workflow_id, history.run_id))
            if result.replay_failure is not None:
                failure = ReplayFailure(
                    history.workflow_id, history.run_id, _history_type(history), result.replay_failure
                )
                break
    report = ReplayReport(query=query, replayed=replayed, failure=failure)
    if failure is not None and raise_on_divergence:
        raise ReplayDivergenceError(
            f"Workflow {failure.workflow_id!r} (run {failure.run_id}, type {failure.workflow_type}) does not replay "
            f"with the new code: {failure.error}. Deploying it would leave that run stuck. Fix: undo the change, or "
            "keep the old behaviour for runs that started before it behind `workflow.patched(...)`.",
            report,
        ) from failure.error
    return report


def _type_name(cls: type[Any]) -> str:
    definition = getattr(cls, "__temporal_workflow_definition", None)
    name = getattr(definition, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"{cls.__qualname__} is not a workflow class (decorate it with `@workflow.defn`).")
    return name


def _history_type(history: WorkflowHistory) -> str:
    for event in history.events[:1]:
        if event.HasField("workflow_execution_started_event_attributes"):
            return event.workflow_execution_started_event_attributes.workflow_type.name
    return "<unknown>"
