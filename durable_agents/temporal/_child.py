"""Sub-agents on Temporal: a `TemporalAgent` run from a tool of another agent's run is a child workflow.

Each agent has a workflow of its own, of type `<agent>.run`, that runs one durable agent run: it takes the run's
arguments as a frame (see `_run_args.py`) and returns the result as a frame (see `_delegation.py`).
[`DurableAgentsPlugin`][durable_agents.temporal.DurableAgentsPlugin] registers it on every worker that runs
workflows, for every agent it registers activities of. The child workflow's id is the parent's workflow id, the
delegate's name and the number of sub-agent runs the parent workflow run started so far: the same on replay.
"""

from __future__ import annotations

import asyncio
import re
import sys
import weakref
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

from .._delegation import decode_result, encode_result
from .._errors import ALLOWED_ERRORS, rebuild_error
from .._frames import ErrorOutcome
from .._run_args import decode_run_args, encode_run_args
from ..exceptions import ContainerUsageError
from ._cancel import await_handle

if TYPE_CHECKING:
    from pydantic_ai.run import AgentRunResult

    from ._agent import TemporalAgent

__all__ = ["agent_workflow", "run_child"]

# Per workflow run (keyed by its event loop, new for every run and replay): how many sub-agent runs it started.
_CHILD_COUNTERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()


def workflow_type(agent_name: str) -> str:
    """The workflow type of an agent's own runs (its child workflows)."""
    return f"{agent_name}.run"


def agent_workflow(agent: TemporalAgent[Any, Any]) -> type:
    """The workflow class of `agent`'s own runs, defined once per agent.

    The sandbox imports a workflow class by module and name, so the class is kept as an attribute of this module
    (which the plugin passes through the sandbox).
    """
    attr = "AgentRun_" + re.sub(r"\W", "_", agent.name)
    module = sys.modules[__name__]
    existing = getattr(module, attr, None)
    if existing is not None and getattr(existing, "agent", None) is agent:
        return existing

    async def run(self: Any, run_args: str) -> str:
        user_prompt, kwargs = decode_run_args(agent.deps_codec, run_args)
        return encode_result(await agent.run_in_container(user_prompt, **kwargs))

    run.__qualname__ = f"{attr}.run"  # temporalio refuses run methods of local classes by their qualified name
    cls = type(attr, (), {"run": workflow.run(run), "agent": agent, "__module__": __name__})
    cls.__qualname__ = attr
    defined = workflow.defn(name=workflow_type(agent.name), sandboxed=True)(cls)
    setattr(module, attr, defined)
    return defined


async def run_child(agent: TemporalAgent[Any, Any], user_prompt: Any, kwargs: dict[str, Any]) -> AgentRunResult[Any]:
    """Run `agent` as a child workflow of the calling workflow and return its result.

    Raises:
        ContainerUsageError: An argument is not data, so it cannot be a child workflow's input.
    """
    model = kwargs.pop("model", None)
    model_id = agent.run_model_id(model)
    if model_id is not None:
        kwargs["model"] = model_id[2:]
    frame, rest = encode_run_args(agent.deps_codec, user_prompt, kwargs)
    if rest:
        raise ContainerUsageError(
            f"Sub-agent {agent.name!r} runs as a child workflow, whose input must be data, but it was given "
            f"{', '.join(sorted(rest))} that is not. Fix: pass only data to the sub-agent's `run()` (prompt, deps, "
            "message_history, usage, usage_limits, model name, metadata...)."
        )
    info = workflow.info()
    loop = asyncio.get_running_loop()
    n = _CHILD_COUNTERS.get(loop, 0) + 1
    _CHILD_COUNTERS[loop] = n
    try:
        child = await workflow.start_child_workflow(
            workflow_type(agent.name),
            frame,
            id=f"{info.workflow_id}/{agent.name}/{n}",
            result_type=str,
            static_summary=f"sub-agent {agent.name}",
            # The child outlives no parent: if the parent closes otherwise than by its cancellation reaching the
            # child (terminated, timed out), the child is asked to cancel rather than left running or killed.
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
        )
        result: str = await await_handle(child)
    except ChildWorkflowError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type in ALLOWED_ERRORS:
            # The child failed with one of ours or pydantic-ai's errors: the parent fails with the same one.
            raise rebuild_error(
                workflow_type(agent.name), ErrorOutcome(error=cause.type, message=cause.message)
            ) from exc
        raise
    return decode_result(agent.wrapped.output_type, result)
