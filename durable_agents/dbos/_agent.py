"""`DBOSAgent`: each agent run is a DBOS workflow, each model request and tool call a DBOS step."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, cast

from dbos import DBOS, DBOSClient, SetWorkflowID
from dbos import _dbos as dbos_internals  # pyright: ignore[reportPrivateUsage]
from dbos._core import StepOptions
from dbos._error import DBOSNonExistentWorkflowError
from pydantic import JsonValue
from pydantic_ai.agent import AbstractAgent, EventStreamHandler
from pydantic_ai.messages import ModelMessagesTypeAdapter
from pydantic_ai.models import Model
from pydantic_ai.output import OutputDataT
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT
from pydantic_ai.toolsets import AbstractToolset, ExternalToolset, FunctionToolset

from .._agent import DurableAgent, ParallelExecutionMode
from .._config import UnitConfigs, check_layer, config_keys
from .._delegation import with_usage_back
from .._engine import DBOS_CAPABILITIES
from .._external import EventOutcome, timed_out
from .._inputs import check_run_inputs
from .._live import LiveEvents
from .._policy import is_fatal, pause_before_retry
from .._run import CURRENT_RUN
from .._telemetry import attach_traceparent, current_traceparent, unit_attempt
from .._units import Unit
from ..exceptions import (
    ConfigurationError,
    ContainerUsageError,
    DuplicateAgentNameError,
    RegisteredTooLateError,
    SerializationError,
    UnknownRunError,
)
from ._config import StepConfig
from ._external import DONE, WAITING, dbos_launched, state_key
from ._live import LIVE_EVENTS_STREAM, WATCH_FIX, client_records
from ._version import agents_of

__all__ = ["DBOSAgent"]

_STEP_CONFIG_KEYS = config_keys(StepConfig)

# Inside one of our workflows: (workflow id, number of agent runs started so far), for deterministic run keys.
_RUN_SEQ: ContextVar[tuple[str, list[int]] | None] = ContextVar("durable_agents_dbos_run_seq", default=None)

# How long one `DBOS.recv` of a wait without a timeout lasts; the wait receives again until an answer arrives.
_RECV_CHUNK_SECONDS = 24 * 3600.0


def _is_dbos_function(function: Any) -> bool:
    """Whether a tool function is a DBOS step or workflow wrapper, which journals itself.

    DBOS tags both the wrapper it returns and the function it decorated with `dbos_function_name`, so the tag
    alone would also match the plain, undecorated function. The wrapper is the one that wraps a tagged function.
    """
    inner = getattr(function, "__wrapped__", None)
    return hasattr(function, "dbos_function_name") and inner is not None and hasattr(inner, "dbos_function_name")


def _should_retry(exc: BaseException) -> bool:
    # Units already turn fatal errors into values; this guards anything that slips through.
    return not is_fatal(exc)


class DBOSAgent(DurableAgent[AgentDepsT, OutputDataT]):
    """A pydantic-ai agent whose runs are DBOS workflows and whose I/O operations are DBOS steps.

    Create it at import time, before `DBOS.launch()`: DBOS recovers only the workflows it knows at launch.

    ```python
    from dbos import DBOS
    from durable_agents.dbos import DBOSAgent, StepConfig

    DBOS(config={"name": "app", "system_database_url": "sqlite:///app.sqlite"})
    dbos_agent = DBOSAgent(agent, model_step_config=StepConfig(retries_allowed=True, max_attempts=3))
    DBOS.launch()
    result = await dbos_agent.run("What is the capital of Mexico?", run_id="question-1")
    ```

    `run()` runs the agent as a DBOS workflow; inside a user's `@DBOS.workflow` it is a child workflow. Its `run_id=`
    is also the DBOS workflow id, which makes the run idempotent: running the same id again (after a crash, from a
    restarted script) attaches to the existing workflow and returns its result, and no completed step runs again.
    Without it DBOS picks a new workflow id, so a restarted script starts a new run (the old one is recovered in the
    background). DBOS's `SetWorkflowID` also sets the workflow id, for a run without `run_id=`.
    """

    engine = "dbos"
    capabilities = DBOS_CAPABILITIES

    def __init__(
        self,
        wrapped: AbstractAgent[AgentDepsT, OutputDataT],
        *,
        step_config: StepConfig | None = None,
        model_step_config: StepConfig | None = None,
        mcp_step_config: StepConfig | None = None,
        toolset_step_configs: Mapping[str, StepConfig] | None = None,
        tool_step_configs: Mapping[str, StepConfig | None] | None = None,
        event_stream_handler_step_config: StepConfig | None = None,
        models: Mapping[str, Model | str] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        parallel_execution_mode: ParallelExecutionMode = "parallel_ordered_events",
        require: Iterable[str] = (),
        live_events: LiveEvents | bool | None = None,
    ) -> None:
        """Wrap `wrapped` so that its runs are DBOS workflows. Must be called before `DBOS.launch()`.

        Args:
            wrapped: The agent; it must have a `name`, unique among the process's DBOS agents.
            step_config: Config of every step.
            model_step_config: Config of model request steps, over `step_config`.
            mcp_step_config: Config of the listing and call steps of MCP servers (and other toolsets whose tool
                list is I/O), over `step_config`.
            toolset_step_configs: Config per toolset id, over the above. The agent's own tools have the id `agent`.
            tool_step_configs: Config per tool name, over its toolset's. `None` runs the tool inline in the
                workflow, not journaled: only for fast, deterministic, I/O-free tools. Tools already decorated
                with `@DBOS.step` (or `@DBOS.workflow`) run as themselves unless they are listed here.
            event_stream_handler_step_config: Config of the steps that deliver agent-level events to the
                event-stream handler, over `step_config`.
            models: Models a run may select with `run(model='<key>')`.
            event_stream_handler: Called with the live model stream inside model steps, and with agent-level
                events (tool calls and results, final result) in their own steps, in order.
            parallel_execution_mode: `'parallel_ordered_events'` (default) runs the tool calls of one model
                response concurrently and reports their events in call order; `'sequential'` runs them one by one.
            require: Capabilities the engine must have.
            live_events: Publish each run's events for [`watch()`][durable_agents.DurableAgent.watch] (by workflow
                id) in the workflow's DBOS stream `durable_agents.events`.
        """
        if dbos_launched():
            raise RegisteredTooLateError(
                f"DBOSAgent for agent {wrapped.name!r} was created after DBOS.launch(). DBOS only recovers workflows "
                "registered before launch, so this agent's runs could not survive a crash. Fix: create every "
                "DBOSAgent at import time (module level), before calling DBOS.launch()."
            )
        registry = dbos_internals._get_or_create_dbos_registry()  # pyright: ignore[reportPrivateUsage]
        agents = agents_of(registry)
        if wrapped.name and f"{wrapped.name}.run" in agents:
            raise DuplicateAgentNameError(wrapped.name, self.engine)

        mcp = dict(mcp_step_config or {})
        check_layer(mcp, "mcp_step_config", _STEP_CONFIG_KEYS, "StepConfig", StepConfig)
        toolset_cfgs: dict[str, Mapping[str, Any]] = {}
        tool_cfgs: dict[str, Mapping[str, Any] | None] = dict(tool_step_configs or {})

        def visit(leaf: AbstractToolset[Any]) -> None:
            if isinstance(leaf, FunctionToolset):
                for tool_name, tool in leaf.tools.items():
                    if tool_name not in tool_cfgs and _is_dbos_function(tool.function):
                        tool_cfgs[tool_name] = None  # already journaled by its own decorator
            elif not isinstance(leaf, ExternalToolset) and leaf.id is not None and mcp:
                toolset_cfgs[leaf.id] = dict(mcp)

        for toolset in wrapped.toolsets:
            toolset.apply(visit)
        for toolset_id, cfg in (toolset_step_configs or {}).items():
            toolset_cfgs[toolset_id] = {**toolset_cfgs.get(toolset_id, {}), **cfg}

        configs = UnitConfigs(
            known_keys=_STEP_CONFIG_KEYS,
            config_name="StepConfig",
            config_type=StepConfig,
            base=step_config or {},
            model=model_step_config or {},
            events=event_stream_handler_step_config or {},
            toolsets=toolset_cfgs,
            tools=tool_cfgs,
        )
        super().__init__(
            wrapped,
            unit_configs=configs,
            models=models,
            event_stream_handler=event_stream_handler,
            parallel_execution_mode=parallel_execution_mode,
            require=require,
            live_events=live_events,
        )

        async def run_workflow(request: dict[str, Any]) -> AgentRunResult[Any]:
            token = _RUN_SEQ.set(None)
            try:
                # The caller's trace context, as stored with the workflow's input: the same after a recovery.
                with attach_traceparent(request.get("trace")):
                    return await self.run_in_container(**self._decode_request(request))
            finally:
                _RUN_SEQ.reset(token)

        self.workflow_name = f"{self.name}.run"
        """The name of the DBOS workflow of this agent's runs (see `DBOS.list_workflows(name=...)`)."""
        self._workflow = DBOS.workflow(name=self.workflow_name)(run_workflow)
        agents[self.workflow_name] = self

    # ----------------------------------------------------------------- engine hooks

    def in_container(self) -> bool:
        """Whether the caller is DBOS workflow code (not a step)."""
        return DBOS.workflow_id is not None and DBOS.step_id is None

    def new_run_key(self) -> str:
        """`<agent>:<workflow id>:<n>`: the n-th agent run of the workflow, the same when the workflow recovers."""
        workflow_id = self._workflow_id()
        seq = _RUN_SEQ.get()
        if seq is None or seq[0] != workflow_id:
            seq = (workflow_id, [0])
            _RUN_SEQ.set(seq)
        n = seq[1][0]
        seq[1][0] += 1
        return f"{self.name}:{workflow_id}:{n}"

    async def execute_unit(self, unit: Unit, payload: bytes, config: Mapping[str, Any], label: str) -> bytes:
        """Run the unit as a DBOS step named `label` (`<agent>.model`, `<agent>.toolset.<id>.call/<tool>`, ...)."""
        options = cast(StepOptions, {**config, "name": label, "should_retry": _should_retry})
        body = cast(Callable[[bytes], Coroutine[Any, Any, bytes]], unit.body)
        attempts = 0

        async def step(data: bytes) -> bytes:
            nonlocal attempts
            attempts += 1
            try:
                with unit_attempt(attempts):
                    return await body(data)
            except Exception as exc:
                # DBOS retries after its own interval; a server's Retry-After comes first.
                await pause_before_retry(exc)
                raise

        return await DBOS.run_step_async(options, step, payload)

    async def publish_live(self, record: str) -> None:
        """Write the record to the workflow's stream: from the workflow a journaled operation, from a step not."""
        await DBOS.write_stream_async(LIVE_EVENTS_STREAM, record)

    async def live_records(  # pyright: ignore[reportIncompatibleMethodOverride]
        self,
        run_id: str,
        *,
        client: DBOSClient | None = None,
        system_database_url: str | None = None,
        poll_interval: float = 0.5,
    ) -> AsyncIterator[str]:
        """The records in the stream of workflow `run_id`.

        Read with `client=` (a `DBOSClient`), else with a client on `system_database_url=`, else with the DBOS
        launched in this process: a process that is no DBOS application (a dashboard, a script) can watch runs
        with the application's system database URL.
        """
        if client is None and system_database_url is None:
            if not dbos_launched():
                raise ConfigurationError(
                    "Watching a DBOS run needs the application's system database. Fix: pass "
                    "`system_database_url=` (the URL the application's DBOS uses) or `client=` (a `DBOSClient`) "
                    "to `watch()`, or launch DBOS in this process."
                )
            try:
                async for record in DBOS.read_stream_async(run_id, LIVE_EVENTS_STREAM):
                    yield record
            except DBOSNonExistentWorkflowError as exc:
                raise UnknownRunError(run_id, self.engine, WATCH_FIX) from exc
            return
        async for record in client_records(run_id, client, system_database_url, poll_interval):
            yield record

    def event_address(self, key: str) -> dict[str, str]:
        """The workflow and the `DBOS.recv` topic of wait `key` (see `durable_agents.dbos._external`)."""
        return {"workflow": self._workflow_id(), "topic": self._topic(key), "key": key}

    async def ask_in_unit(self, key: str, token: str, ask: Callable[[str], Awaitable[JsonValue]]) -> JsonValue:
        """Mark the wait as begun (a workflow event), then call `ask` in a step named `<agent>.ask/<key>`."""
        topic = self._topic(key)
        await DBOS.set_event_async(state_key(topic), WAITING)
        config = self.unit_configs.base
        options = cast(StepOptions, {**config, "name": f"{self.name}.ask/{key}", "should_retry": _should_retry})
        step = cast(Callable[[str], Coroutine[Any, Any, JsonValue]], ask)
        answer = await DBOS.run_step_async(options, step, token)
        if answer is not None:
            await DBOS.set_event_async(state_key(topic), DONE)
        return answer

    async def wait_for_event(self, key: str, timeout: timedelta | None) -> EventOutcome:
        """`DBOS.recv` on the wait's topic (received again every day while there is no timeout), then mark it done."""
        topic = self._topic(key)
        if timeout is None:
            message = None
            while message is None:
                message = await DBOS.recv_async(topic, _RECV_CHUNK_SECONDS)
        else:
            message = await DBOS.recv_async(topic, timeout.total_seconds())
        await DBOS.set_event_async(state_key(topic), DONE)
        return timed_out(timeout) if message is None else EventOutcome.from_json(message)

    def _workflow_id(self) -> str:
        workflow_id = DBOS.workflow_id
        if workflow_id is None:
            raise ContainerUsageError("A durable run of a DBOSAgent must run inside its DBOS workflow.")
        return workflow_id

    def _topic(self, key: str) -> str:
        state = CURRENT_RUN.get()
        assert state is not None, "the waiter is installed with the run"
        return f"da.{self.name}.{state.run_key.rsplit(':', 1)[-1]}.{key}"

    async def dispatch_run(self, user_prompt: Any, kwargs: dict[str, Any]) -> AgentRunResult[Any]:
        """Start the agent's DBOS workflow, or a child workflow of the calling one (see the class docstring)."""
        if DBOS.step_id is not None:
            raise ContainerUsageError(
                f"DBOSAgent {self.name!r} was run inside a DBOS step (for example from a tool of another durable "
                "agent that does not refer to it by name), and DBOS cannot start a workflow from a step. Fix: run "
                "the calling tool in the workflow instead of a step, with `tool_step_configs={'<tool name>': None}` "
                "on the calling agent; the sub-agent's run then is a durable child workflow with its own steps."
            )
        check_run_inputs(self.name, user_prompt, kwargs.get("message_history"), None)
        # Inside a workflow (a sub-agent run from a tool of another agent) this is a child workflow, whose id DBOS
        # derives from the parent's; it gets a copy of `usage=` and its usage is added to the caller's.
        return await with_usage_back(kwargs, lambda kw: self.run_outside_container(user_prompt, **kw))

    async def run_outside_container(self, user_prompt: Any, **kwargs: Any) -> AgentRunResult[Any]:
        """Start the agent's DBOS workflow (the workflow of id `run_id`, if given) and wait for its result."""
        request = self._encode_request(user_prompt, kwargs)
        run_id: str | None = kwargs.get("run_id")
        if run_id is None:
            return await self._workflow(request)
        with SetWorkflowID(run_id):
            return await self._workflow(request)

    # ----------------------------------------------------------------- workflow inputs

    def _encode_request(self, user_prompt: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The workflow's input: plain data DBOS can store and hand back to a recovering process."""
        kwargs.pop("infer_name", None)
        self.check_run_toolsets(kwargs.get("toolsets"))
        # Only the run's own `model=` is stored: an `override(model=...)` is seen by the workflow, in this context.
        model_key = self.run_model_id(kwargs.pop("model", None))
        deps = self.deps_codec.check(kwargs.pop("deps", None))
        history = kwargs.pop("message_history", None)
        handler = kwargs.pop("event_stream_handler", None)
        if handler is not None:
            _check_picklable(
                "event_stream_handler",
                handler,
                "Pass a module-level function (it is stored by reference), or pass the handler when building "
                "the DBOSAgent.",
            )
        _check_picklable("user_prompt", user_prompt, "Pass a string or pydantic-ai user content.")
        for name, value in kwargs.items():
            _check_picklable(name, value, "Pass plain data (numbers, strings, dicts, dataclasses).")
        return {
            "prompt": user_prompt,
            "model": model_key,
            "deps": deps,
            "history": None if history is None else ModelMessagesTypeAdapter.dump_json(list(history)),
            "handler": handler,
            "options": kwargs,
            "trace": current_traceparent(),
        }

    def _decode_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        model_key: str | None = request["model"]
        kwargs: dict[str, Any] = dict(request["options"])
        kwargs["user_prompt"] = request["prompt"]
        kwargs["model"] = None if model_key is None else model_key[2:]
        kwargs["deps"] = self.deps_codec.decode(request["deps"])
        kwargs["event_stream_handler"] = request["handler"]
        if request["history"] is not None:
            kwargs["message_history"] = ModelMessagesTypeAdapter.validate_json(request["history"])
        return kwargs


def _check_picklable(name: str, value: Any, fix: str) -> None:
    try:
        pickle.dumps(value)
    except Exception as exc:
        raise SerializationError(
            f"The run argument `{name}` ({type(value).__name__}) cannot be stored by DBOS, which pickles workflow "
            f"inputs so a recovering process can resume the run: {exc}. Fix: {fix}"
        ) from exc
