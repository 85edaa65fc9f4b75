"""`TemporalAgent`: the container is a Temporal workflow, every unit an activity."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import JsonValue
from pydantic_ai import _utils as _pydantic_ai_utils  # pyright: ignore[reportPrivateUsage]
from pydantic_ai.agent import AbstractAgent, EventStreamHandler
from pydantic_ai.models import Model
from pydantic_ai.output import OutputDataT
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT
from pydantic_ai.toolsets import FunctionToolset
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeoutError
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError
from temporalio.workflow import ActivityConfig, LocalActivityConfig

from .._agent import DurableAgent, ParallelExecutionMode
from .._config import UnitConfigs, config_keys
from .._delegation import with_usage_back
from .._engine import TEMPORAL_CAPABILITIES
from .._external import Ask, EventOutcome
from .._live import LiveEvents
from .._policy import MAX_RETRY_AFTER, classify
from .._run import CURRENT_RUN, parent_run
from .._telemetry import unit_attempt
from .._units import Unit, UnitKind
from ..exceptions import ConfigurationError, UnitNotRegisteredError
from ._cancel import await_handle
from ._child import agent_workflow, run_child
from ._continue import HistoryLimit, HistoryLimitReached
from ._defaults import check_values, with_defaults
from ._external import ask_activity, ask_in_workflow, event_address, wait_in_workflow
from ._heartbeat import heartbeating
from ._history_source import recorded_exchanges
from ._live import live_records, publish_live, start_live_log
from ._local import LocalTools
from ._payloads import frame_of, payload_of

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "UNIT_ATTR", "TemporalAgent"]

UNIT_ATTR = "__durable_agents_unit__"
"""The attribute naming the unit an activity function of a `TemporalAgent` runs."""

DEFAULT_MAX_PAYLOAD_BYTES = 2_000_000
"""A little under Temporal's default blob size limit (2 MiB), leaving room for payload metadata."""

# What `execute_local_activity` accepts of an `ActivityConfig`; the rest (task_queue, heartbeat_timeout, priority...)
# has no meaning for an activity that runs on the workflow's own worker.
_LOCAL_KEYS = config_keys(LocalActivityConfig)

# pydantic-ai runs sync functions (instructions, output validators, sync tools) in threads, which a workflow cannot
# start; inside this context it runs them inline. It is private in pydantic-ai, hence the guarded lookup: without it,
# sync functions in the workflow fail and sync tools cannot opt out of activities.
_DISABLE_THREADS: Callable[[], contextlib.AbstractContextManager[None]] | None = getattr(
    _pydantic_ai_utils, "disable_threads", None
)

# Per workflow run: how many agent runs it started so far. Keyed by the workflow's event loop, which Temporal
# creates anew for every run and every replay, so the count restarts with the replay and keys stay the same.
_RUN_COUNTERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()


class TemporalAgent(DurableAgent[AgentDepsT, OutputDataT]):
    """A pydantic-ai agent whose runs inside a Temporal workflow are durable.

    Inside a workflow, `run()` executes the agent graph in the workflow and every model request, tool call,
    MCP listing and event-handler delivery as an activity. Outside a workflow it behaves like the bare agent.
    Register the activities with [`DurableAgentsPlugin`][durable_agents.temporal.DurableAgentsPlugin] (or
    [`temporal_activities`][durable_agents.temporal.TemporalAgent.temporal_activities] by hand).
    """

    engine = "temporal"
    capabilities = TEMPORAL_CAPABILITIES
    containers_see_caller_context = False

    def __init__(
        self,
        wrapped: AbstractAgent[AgentDepsT, OutputDataT],
        *,
        activity_config: ActivityConfig | None = None,
        model_activity_config: ActivityConfig | None = None,
        toolset_activity_config: Mapping[str, ActivityConfig] | None = None,
        tool_activity_config: Mapping[str, ActivityConfig | None] | None = None,
        event_stream_handler_activity_config: ActivityConfig | None = None,
        models: Mapping[str, Model | str] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        parallel_execution_mode: ParallelExecutionMode = "parallel_ordered_events",
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
        history_limit: HistoryLimit | None = None,
        local_activity_tools: Collection[str] | Literal["all"] = (),
        local_activity_toolsets: Collection[str] = (),
        require: Iterable[str] = (),
        live_events: LiveEvents | bool | None = None,
    ) -> None:
        """Wrap `wrapped` for durable runs in Temporal workflows.

        Args:
            wrapped: The agent; it must have a `name` (activities are named `<name>.model`, `<name>.events`...).
            activity_config: Config of every activity (temporalio's `ActivityConfig`). Keys no layer sets take the
                defaults of the unit's kind
                ([`DEFAULT_ACTIVITY_CONFIGS`][durable_agents.temporal.DEFAULT_ACTIVITY_CONFIGS]).
            model_activity_config: Config of model request activities, over `activity_config`.
            toolset_activity_config: Config per toolset id (`'agent'`: the agent's own tools), over `activity_config`.
            tool_activity_config: Config per tool name, over its toolset's. `None` runs the tool inline in the
                workflow instead of as an activity: only for deterministic, I/O-free function tools.
            event_stream_handler_activity_config: Config of the activities that deliver agent-level events to the
                event-stream handler, over `activity_config`.
            models: Models a run may select with `run(model='<name>')`; model instances must be registered here.
            event_stream_handler: Runs inside the model activity on the live stream, and in an events activity for
                agent-level events. A handler cannot be passed per run inside a workflow.
            parallel_execution_mode: How the tool calls of one model response run in the workflow.
            max_payload_bytes: Fail (never retry) a run whose activity input or output is larger than this.
                Keep it under the server's blob size limit; `None` disables the check.
            history_limit: When set, a run inside a workflow raises
                [`HistoryLimitReached`][durable_agents.temporal.HistoryLimitReached] (carrying the conversation so
                far) before a model request once the workflow history is over the limit, so the workflow can
                continue as new.
            local_activity_tools: Tools whose calls run as Temporal local activities (on the worker that runs the
                workflow, without a round trip through the server), or `'all'` for every tool call. For short
                tools only: see the Temporal page of the docs for the limits. Names must be tools of the agent's
                function toolsets (use `local_activity_toolsets` for MCP servers and dynamic toolsets).
            local_activity_toolsets: Toolset ids (`'agent'`: the agent's own tools) whose tool calls run as local
                activities. Listing tools stays a regular activity.
            require: Capabilities the engine must have.
            live_events: Publish each run's events for [`watch()`][durable_agents.DurableAgent.watch] (by workflow
                id): the workflow keeps them, a query serves them, model activities add theirs by signal.
        """
        self.max_payload_bytes = max_payload_bytes
        self.history_limit = history_limit
        configs = UnitConfigs(
            known_keys=config_keys(ActivityConfig),
            config_name="ActivityConfig",
            base=activity_config or {},
            model=model_activity_config or {},
            events=event_stream_handler_activity_config or {},
            toolsets=toolset_activity_config or {},
            tools=tool_activity_config or {},
        )
        for layer in (configs.base, configs.model, configs.events, *configs.toolsets.values(), *configs.tools.values()):
            if layer is not None:
                check_values(layer)
        super().__init__(
            wrapped,
            unit_configs=configs,
            models=models,
            event_stream_handler=event_stream_handler,
            parallel_execution_mode=parallel_execution_mode,
            require=require,
            live_events=live_events,
        )
        self._check_inline_tools_are_async()
        self._local_tools = LocalTools.choose(
            self.name, self._leaves, self.unit_configs, local_activity_tools, local_activity_toolsets
        )
        self._activities: list[Callable[..., Awaitable[Any]]] = [_activity_for(unit) for unit in self.units]
        ask = ask_activity(self.name, _as_temporal_error)
        setattr(ask, UNIT_ATTR, f"{self.name}.ask")
        self._activities.append(ask)

    def _check_inline_tools_are_async(self) -> None:
        if _DISABLE_THREADS is not None:
            return  # sync tools run inline in the workflow
        for leaf in self._leaves.values():
            if not isinstance(leaf.wrapped, FunctionToolset):
                continue
            for tool_name, tool in leaf.wrapped.tools.items():
                if self.unit_configs.for_tool(leaf.toolset_id, tool_name) is None and not tool.function_schema.is_async:
                    raise ConfigurationError(
                        f"Tool {tool_name!r} of agent {self.name!r} opted out of running as an activity, but it is a "
                        "sync function: pydantic-ai runs sync tools in a thread, which a Temporal workflow cannot "
                        "do. Fix: make it `async def` (and deterministic, without I/O), or let it run as an activity."
                    )

    @property
    def temporal_activities(self) -> list[Callable[..., Awaitable[Any]]]:
        """The activities of this agent, for `Worker(activities=...)` when not using the plugin.

        One per unit, and `<agent>.ask`, the local activity that calls the `ask` of a wait for an external event.
        """
        return list(self._activities)

    @property
    def max_history_bytes(self) -> int | None:
        """A run starts with at most one activity input's worth of `message_history` on Temporal.

        The history is encoded in the workflow before the first model activity, in one workflow task: a few MB
        take longer than the 2 s Temporal's deadlock detector allows (which would retry the task forever).
        """
        return self.max_payload_bytes

    def in_container(self) -> bool:
        return workflow.in_workflow()

    async def dispatch_run(self, user_prompt: Any, kwargs: dict[str, Any]) -> AgentRunResult[Any]:
        """As `DurableAgent.dispatch_run`; called by a tool of another agent's run in a workflow, a child workflow.

        The sub-agent's run is a workflow of type `<agent>.run` (registered by the plugin), its usage is added to
        the `usage=` it was given, and an error of ours or pydantic-ai's that fails it fails the caller the same.
        """
        if workflow.in_workflow() and parent_run(self.name) is not None:
            return await with_usage_back(kwargs, functools.partial(run_child, self, user_prompt))
        return await super().dispatch_run(user_prompt, kwargs)

    @property
    def temporal_workflow(self) -> type:
        """The workflow of this agent's runs as a sub-agent (type `<agent>.run`), for `Worker(workflows=...)`."""
        return agent_workflow(self)

    def new_run_key(self) -> str:
        info = workflow.info()
        loop = asyncio.get_running_loop()
        n = _RUN_COUNTERS.get(loop, 0) + 1
        _RUN_COUNTERS[loop] = n
        if self.live_events is not None:
            start_live_log()  # a watcher's query is answered from the start of the run
        return f"{info.workflow_id}/{info.run_id}/{n}"

    async def publish_live(self, record: str) -> None:
        await publish_live(record)

    async def live_records(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, run_id: str, *, client: Client | None = None, poll_interval: float = 0.2, **options: Any
    ) -> AsyncIterator[str]:
        """The records of workflow `run_id`; `client=` (required) connects to its namespace."""
        if client is None or options:
            raise ConfigurationError(
                "watch() on Temporal reads the workflow through a client, and takes `client=` and `poll_interval=` "
                f"only (got {sorted(options)}). Fix: `watch(workflow_id, client=client)`."
            )
        async for record in live_records(run_id, client, poll_interval):
            yield record

    async def execute_unit(self, unit: Unit, payload: bytes, config: Mapping[str, Any], label: str) -> bytes:
        if unit.kind is UnitKind.MODEL and self.history_limit is not None:
            self._check_history_limit(self.history_limit)
        options: dict[str, Any] = {"summary": label, **with_defaults(unit.kind, config)}
        if unit.kind is UnitKind.TOOL and self._runs_locally(unit, label):
            local = {key: value for key, value in options.items() if key in _LOCAL_KEYS}
            result = await await_handle(
                workflow.start_local_activity(unit.name, payload_of(payload), result_type=RawValue, **local)
            )
            return frame_of(result)
        try:
            result = await await_handle(
                workflow.start_activity(unit.name, payload_of(payload), result_type=RawValue, **options)
            )
        except ActivityError as exc:
            if _never_started(exc):
                timed_out = isinstance(exc.cause, ActivityTimeoutError)
                waited = options.get("schedule_to_start_timeout") if timed_out else None
                queue = options.get("task_queue") or workflow.info().task_queue
                raise UnitNotRegisteredError(self.name, unit.name, queue, waited) from exc
            raise
        return frame_of(result)

    def _runs_locally(self, unit: Unit, label: str) -> bool:
        # A tool call's label is `<unit name>/<tool name>` (see `durable_agents._units`).
        tool = label.removeprefix(f"{unit.name}/") if label.startswith(f"{unit.name}/") else None
        return self._local_tools.covers(unit.toolset_id, tool)

    async def recorded_exchanges(self, unit: Unit) -> list[tuple[bytes, bytes | None]] | None:
        """The inputs and results of `unit`'s earlier activities in the calling activity's workflow run.

        Read from the workflow history on the server, so any worker can rebuild a run's state that another worker
        built (see `durable_agents.temporal._history_source`). In schedule order; the result is `None` for an
        activity that has not completed. `None` when they cannot be read (not called from an activity, or the
        history read failed).
        """
        return await recorded_exchanges(unit.name)

    def event_address(self, key: str) -> dict[str, str]:
        """The workflow id and run id, and the wait's slot in the workflow run (see `temporal/_external.py`)."""
        return event_address(key)

    async def ask_in_unit(self, key: str, token: str, ask: Ask) -> JsonValue:
        """Call `ask` in the local activity `<agent>.ask`, on the worker that runs the workflow."""
        return await ask_in_workflow(self.name, key, token, ask)

    async def wait_for_event(self, key: str, timeout: timedelta | None) -> EventOutcome:
        """`workflow.wait_condition` until the update delivers the outcome: no worker is held meanwhile."""
        return await wait_in_workflow(key, timeout)

    def _check_history_limit(self, limit: HistoryLimit) -> None:
        reason = limit.exceeded()
        if reason is None:
            return
        state = CURRENT_RUN.get()
        if state is None or state.agent_name != self.name:
            return
        raise HistoryLimitReached(self.name, reason, state.log.messages)

    async def call_inline_tool(self, tool_name: str, call: Awaitable[Any]) -> Any:
        """Run an opted-out tool in the workflow; what the sandbox refuses fails the run instead of the workflow task.

        A refused call (I/O, `time.sleep`...) is refused again on every retry of the task, so it is a
        `ConfigurationError`. A tool that computes for longer than the deadlock detector allows (2 s) cannot be
        caught here: the worker fails the task from outside. Run such tools as activities.
        """
        try:
            return await call
        except RestrictedWorkflowAccessError as exc:
            raise ConfigurationError(
                f"Tool {tool_name!r} of agent {self.name!r} opted out of running as an activity "
                f"(tool_activity_config={{{tool_name!r}: None}}), so it runs in the workflow, where the sandbox "
                f"refused what it did: {str(exc).rstrip('.')}. Workflow code must be deterministic and do no I/O, "
                "no sleeping, no threads. Fix: let the tool run as an activity (remove its `None` config), or make it "
                "pure."
            ) from exc

    def replay_probe(self) -> Callable[[], bool]:
        """Temporal says when workflow code replays history: nothing it does then is emitted again."""
        return workflow.unsafe.is_replaying_history_events

    def telemetry_clock(self) -> int:
        """Workflow time, the same when the workflow replays: a run span's start is that of its first execution."""
        return int(workflow.now().timestamp() * 1e9)

    def container_context(self) -> contextlib.AbstractContextManager[None]:
        """pydantic-ai's sync functions run inline in a durable run: a workflow cannot start threads."""
        return _DISABLE_THREADS() if _DISABLE_THREADS is not None else contextlib.nullcontext()

    async def run_outside_container(self, user_prompt: Any, **kwargs: Any) -> AgentRunResult[Any]:
        model = self.bare_model(kwargs.pop("model", None))
        return await self.wrapped.run(user_prompt, model=model, **kwargs)


def _activity_for(unit: Unit) -> Callable[[RawValue], Awaitable[RawValue]]:
    body = unit.body

    async def run_unit(payload: RawValue) -> RawValue:
        try:
            with unit_attempt(activity.info().attempt if activity.in_activity() else 1):
                async with heartbeating():
                    return payload_of(await body(frame_of(payload)))
        except Exception as exc:
            # Units return fatal errors as values; what escapes is retryable.
            error = _as_temporal_error(exc)
            if error is not None:
                raise error from exc
            raise

    run_unit.__name__ = run_unit.__qualname__ = unit.name.replace(".", "_")
    setattr(run_unit, UNIT_ATTR, unit.name)
    return activity.defn(name=unit.name)(run_unit)


def _as_temporal_error(exc: Exception) -> ApplicationError | None:
    """The error an activity raises for `exc` when the error policy has a verdict Temporal must know, else `None`.

    A fatal error is never retried; a server's Retry-After becomes the next attempt's delay.
    """
    verdict = classify(exc)
    if not verdict.fatal and verdict.retry_after is None:
        return None
    return ApplicationError(
        str(exc) or type(exc).__name__,
        type=type(exc).__name__,
        non_retryable=verdict.fatal,
        next_retry_delay=None
        if verdict.retry_after is None
        else timedelta(seconds=min(verdict.retry_after, MAX_RETRY_AFTER)),
    )


def _never_started(exc: ActivityError) -> bool:
    """Whether an activity failed because no worker ran it: none picked it up, or the ones that did lack it."""
    cause = exc.cause
    if isinstance(cause, ActivityTimeoutError):
        return cause.type is TimeoutType.SCHEDULE_TO_START
    return isinstance(cause, ApplicationError) and cause.type == "NotFoundError" and "is not registered" in str(cause)
