"""`PrefectAgent`: a pydantic-ai agent whose runs are Prefect flows and whose I/O operations are Prefect tasks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import importlib.util
import itertools
import logging
import os
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast
from uuid import UUID

import pydantic_core
from prefect import Flow, Task, serve, tags
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.context import FlowRunContext, TaskRunContext
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import MissingResult, ObjectNotFound
from prefect.filesystems import LocalFileSystem, WritableFileSystem
from prefect.flow_engine import run_flow_async
from prefect.results import aresolve_result_storage
from prefect.serializers import JSONSerializer
from prefect.settings import get_current_settings
from prefect.states import Crashed
from prefect.types.entrypoint import EntrypointType
from pydantic import JsonValue, TypeAdapter
from pydantic_ai.agent import AbstractAgent, EventStreamHandler
from pydantic_ai.models import Model
from pydantic_ai.output import OutputDataT
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT

from .._agent import DurableAgent, ParallelExecutionMode
from .._config import UnitConfigs, check_layer, config_keys
from .._engine import PREFECT_CAPABILITIES
from .._external import Ask, EventOutcome, decode_token, timed_out
from .._live import LiveEvents
from .._model_ids import live_override
from .._policy import pause_before_retry
from .._run import current_run
from .._run_args import decode_json_args, decode_run_args, encode_run_args, run_args_trace, unstored_run_args
from .._telemetry import attach_traceparent, current_traceparent, engine_logger, unit_attempt
from .._units import Unit, UnitKind
from ..exceptions import (
    ConfigurationError,
    DuplicateAgentNameError,
    ForeignRunError,
    ProtocolError,
    RunArgumentsMissingError,
    RunFinishedError,
    RunNotFoundError,
    RunStillActiveError,
    UnserializableDepsError,
)
from ._cache import FINGERPRINT_PARAMETER, RUN_PARAMETER, RUN_SCOPED, RunScope, UnitOccurrences
from ._config import TaskConfig
from ._external import input_key, read_input, write_input
from ._live import live_records, publish_live

__all__ = [
    "DEFAULT_CACHE_EXPIRATION",
    "HEARTBEAT_LABEL",
    "INLINE_RUN_ARGS_BYTES",
    "RUN_ARGS_PARAMETER",
    "RUN_ID_TAG_PREFIX",
    "PrefectAgent",
]

_RESULT_SERIALIZER = JSONSerializer(object_encoder=None, object_decoder=None)
"""Unit results are JSON frames: plain JSON, without Prefect's object hooks (which import classes named in the data)."""

_LOG = logging.getLogger(__name__)

HEARTBEAT_LABEL = "durable-agents.heartbeat"
"""Flow run label that the flow body of a `PrefectAgent` run sets to the time (Unix seconds) while it is alive."""
RUN_ARGS_PARAMETER = "run_args"
"""Flow parameter holding the run's arguments as a JSON frame (see `_run_args.py`), or a reference to the frame in
result storage when it is large."""
INLINE_RUN_ARGS_BYTES = 256 * 1024
"""A run-arguments frame larger than this (encoded as a parameter) is kept in result storage, and the flow parameter
holds a reference to it: Prefect servers refuse flow run parameters over 512 KiB."""
_STORED_PREFIX = "durable-agents-stored:"
RUN_ID_TAG_PREFIX = "durable-agents-run:"
"""A flow run started by `run(..., run_id=...)` is tagged with this prefix and the id, so a later `run()` of the
same id finds it."""

DEFAULT_CACHE_EXPIRATION = timedelta(days=7)
"""How long a unit's stored result can be reused (by a resume, a flow retry, or `CROSS_RUN`) unless
`TaskConfig(cache_expiration=...)` says otherwise."""


@dataclass(frozen=True)
class _Asked:
    """The stored result of a wait's `ask` task: the token `ask` got, its answer, and when it was asked."""

    token: str
    answer: JsonValue
    at: float
    """Unix seconds: a wait's timeout counts from here, also when the run is resumed later."""


@dataclass
class _Container:
    """The flow body of one `PrefectAgent` run in progress (one per flow run attempt)."""

    agent: PrefectAgent[Any, Any]
    key: str
    """What the keys of its agent runs start with (see `_container_key`)."""
    metadata: bytes
    """The run's `metadata` as JSON: model request keys include it (tool keys see it in the run context)."""
    runs: itertools.count[int] = field(default_factory=itertools.count)
    occurrences: dict[str, UnitOccurrences] = field(default_factory=dict[str, UnitOccurrences])
    scopes: dict[str, RunScope] = field(default_factory=dict[str, RunScope])
    """Each agent run's scope (canonical deps, metadata, model identity), by run key."""
    asked: dict[tuple[str, str], _Asked] = field(default_factory=dict[tuple[str, str], _Asked])
    """What the `ask` task of each wait recorded, by (run key, wait key)."""


_log = engine_logger("prefect")

_CONTAINER: ContextVar[_Container | None] = ContextVar("durable_agents_prefect_container", default=None)

# The containers of agent runs that the user's own flows iterate (`iter()`), by flow run id: the runs of one flow
# run count on, so each gets its own run key. A bounded number is kept; the oldest go first.
_USER_FLOW_CONTAINERS: dict[str, _Container] = {}
_USER_FLOW_CONTAINERS_KEPT = 256


def _metadata_scope(metadata: Any) -> bytes:
    return pydantic_core.to_json(metadata, fallback=lambda v: f"<{type(v).__qualname__}>")  # pyright: ignore[reportUnknownLambdaType]


# Every PrefectAgent of this process by name, so a pickled reference (Prefect bundles, `serve`) finds it again.
_REGISTRY: dict[str, PrefectAgent[Any, Any]] = {}


def _lookup(name: str, module: str, file: str | None) -> PrefectAgent[Any, Any]:
    """Unpickle a `PrefectAgent`: the registered instance, else the one its defining module builds on import."""
    if name not in _REGISTRY:
        if module != "__main__":
            importlib.import_module(module)
        elif file is not None:
            # A script's `__main__` is another program in this process: load the file under its own name, so
            # its `if __name__ == "__main__":` block (e.g. `serve(...)`) does not run again.
            spec = importlib.util.spec_from_file_location(f"__durable_agents_main_{Path(file).stem}__", file)
            if spec is not None and spec.loader is not None:
                loaded = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = loaded
                spec.loader.exec_module(loaded)
    agent = _REGISTRY.get(name)
    if agent is None:
        raise ConfigurationError(
            f"PrefectAgent {name!r} is not defined in this process and importing {module!r} did not define it. "
            "Fix: build the PrefectAgent at module level, in a module the flow's process can import."
        )
    return agent


class PrefectAgent(DurableAgent[AgentDepsT, OutputDataT]):
    """A pydantic-ai agent whose runs are Prefect flows and whose model requests and tool calls are tasks.

    ```python
    from durable_agents.prefect import PrefectAgent, TaskConfig

    prefect_agent = PrefectAgent(agent, model_task_config=TaskConfig(retries=3))
    result = await prefect_agent.run("What is the capital of Mexico?")
    ```

    `run()` starts a flow run named after the agent; inside a user's flow it is a subflow. Every model
    request, tool call, MCP listing and event-stream delivery is a task named after its unit
    (`<agent>.model`, `<agent>.toolset.<id>.call`, ...), with the tool name in the task run name.
    Completed tasks are cached for the flow run (see [`RUN_SCOPED`][durable_agents.prefect.RUN_SCOPED]),
    so [`resume`][durable_agents.prefect.PrefectAgent.resume] after a crash skips them.

    `run(..., run_id=...)` is idempotent: the flow run is tagged `durable-agents-run:<run_id>`, and a later
    `run()` with that id returns the stored result of a completed run, resumes a crashed, failed or dead one,
    and refuses one that is alive (`RunStillActiveError`) instead of starting a second flow run.
    """

    engine = "prefect"
    capabilities = PREFECT_CAPABILITIES

    def __init__(
        self,
        wrapped: AbstractAgent[AgentDepsT, OutputDataT],
        *,
        task_config: TaskConfig | None = None,
        model_task_config: TaskConfig | None = None,
        toolset_task_configs: Mapping[str, TaskConfig] | None = None,
        tool_task_config: TaskConfig | None = None,
        tool_task_config_by_name: Mapping[str, TaskConfig | None] | None = None,
        event_stream_handler_task_config: TaskConfig | None = None,
        models: Mapping[str, Model | str] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        parallel_execution_mode: ParallelExecutionMode = "parallel_ordered_events",
        flow_retries: int = 0,
        flow_retry_delay_seconds: float = 0,
        heartbeat_seconds: float = 10.0,
        event_poll_seconds: float = 1.0,
        require: Iterable[str] = (),
        live_events: LiveEvents | bool | None = None,
    ) -> None:
        """Wrap `wrapped` so its runs are Prefect flows.

        Args:
            wrapped: The agent; it must have a `name` (the flow and every task are named after it).
            task_config: Config of every task.
            model_task_config: Config of model request tasks, over `task_config`.
            toolset_task_configs: Config per toolset id (`'agent'` for the agent's own tools, the MCP server's
                `id`...), over `task_config` and `tool_task_config`.
            tool_task_config: Config of every tool call and listing task, over `task_config`.
            tool_task_config_by_name: Config per tool name, over its toolset's; `None` runs a function tool
                inline in the flow instead of as a task (only for deterministic tools without I/O).
            event_stream_handler_task_config: Config of the tasks that deliver agent-level events to the handler.
            models: Models a run may select with `run(model='<name>')`.
            event_stream_handler: Called with the live model stream inside model tasks and with agent-level
                events in event tasks.
            parallel_execution_mode: How the tool calls of one model response run.
            flow_retries: Prefect retries of the whole flow run; a retry re-runs the flow body and skips the
                tasks that completed.
            flow_retry_delay_seconds: Seconds between flow retries.
            heartbeat_seconds: How often a running flow body marks its flow run as alive; `resume()` takes a
                `RUNNING` run for dead after three intervals without a mark.
            event_poll_seconds: How often a run that waits for an external event (`RequestInput`,
                `wait_for_external_event`) asks the Prefect server whether its answer has come.
            require: Capabilities the engine must have.
            live_events: Publish each run's events for [`watch()`][durable_agents.DurableAgent.watch] (by `run_id=`
                or flow run id), as artifacts of the flow run.
        """
        tool_layer: Mapping[str, Any] = tool_task_config or {}
        toolsets = dict(toolset_task_configs or {})
        configs = UnitConfigs(
            known_keys=config_keys(TaskConfig),
            config_name="TaskConfig",
            config_type=TaskConfig,
            base=task_config or {},
            model=model_task_config or {},
            events=event_stream_handler_task_config or {},
            toolsets=_ToolLayer(tool_layer, toolsets),
            tools=tool_task_config_by_name or {},
        )
        check_layer(tool_layer, "tool_task_config", configs.known_keys, "TaskConfig", TaskConfig)
        super().__init__(
            wrapped,
            unit_configs=configs,
            models=models,
            event_stream_handler=event_stream_handler,
            parallel_execution_mode=parallel_execution_mode,
            require=require,
            live_events=live_events,
        )
        self._module, self._file, _ = self.origin
        existing = _REGISTRY.get(self.name)
        if existing is not None and not self.rebuilds(existing):
            raise DuplicateAgentNameError(self.name, self.engine)
        self._heartbeat_seconds = heartbeat_seconds
        if not event_poll_seconds > 0:
            raise ConfigurationError(
                f"event_poll_seconds={event_poll_seconds!r} would ask the Prefect server without a pause. "
                "Fix: pass a number of seconds above 0 (default 1.0)."
            )
        self._event_poll_seconds = event_poll_seconds
        self._tasks: dict[str, Task[..., Any]] = {unit.name: self._make_task(unit) for unit in self.units}
        self._ask_task = self._make_ask_task()
        self._flow: Flow[..., Any] = self._make_flow(flow_retries, flow_retry_delay_seconds)
        _REGISTRY[self.name] = self

    # ----------------------------------------------------------------- pickling

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by reference: the registered agent of the same name, or the one its module builds on import.

        Prefect pickles a served flow together with the globals it uses; a pydantic-ai agent holds context
        variables and cannot be pickled by value.
        """
        return (_lookup, (self.name, self._module, self._file))

    # ----------------------------------------------------------------- Prefect objects

    def _make_task(self, unit: Unit) -> Task[..., Any]:
        body = unit.body

        async def run_unit(payload: bytes, fingerprint: str, run: str) -> str:
            # A flow started by a tool (an agent delegating to another) is a new container, not this one.
            token = _CONTAINER.set(None)
            try:
                # Our frames are JSON text: stored as JSON, a unit's result is read back without unpickling.
                task_run = getattr(TaskRunContext.get(), "task_run", None)
                with unit_attempt(max(1, getattr(task_run, "run_count", 1))):
                    return (await body(payload)).decode()
            except Exception as exc:
                # Prefect retries after its own delay; a server's Retry-After comes first.
                await pause_before_retry(exc)
                raise
            finally:
                _CONTAINER.reset(token)

        run_unit.__qualname__ = run_unit.__name__ = unit.name.replace(".", "_")
        return Task(
            fn=run_unit,
            name=unit.name,
            cache_policy=RUN_SCOPED,
            persist_result=True,
            result_serializer=_RESULT_SERIALIZER,
            cache_expiration=DEFAULT_CACHE_EXPIRATION,
        )

    def _make_ask_task(self) -> Task[..., Any]:
        """The task that calls a wait's `ask`: its stored result gives a resumed run the same token and answer."""

        async def ask_for_event(token: str, ask: Ask, fingerprint: str, run: str) -> str:
            _, address = decode_token(token)
            async with get_client() as client:
                # The wait input makes the token deliverable (see `prefect/_external.py`); written before `ask` hands
                # the token out, so an answer that comes at once finds it.
                await write_input(
                    client, UUID(address["flow_run"]), input_key(address["run"], address["key"], "wait"), address["key"]
                )
            answer = await ask(token)
            return pydantic_core.to_json({"token": token, "answer": answer, "at": time.time()}).decode()

        return Task(
            fn=ask_for_event,
            name=f"{self.name}.ask",
            cache_policy=RUN_SCOPED,
            persist_result=True,
            result_serializer=_RESULT_SERIALIZER,
            cache_expiration=DEFAULT_CACHE_EXPIRATION,
        )

    def _make_flow(self, retries: int, retry_delay_seconds: float) -> Flow[..., Any]:
        agent = self

        async def agent_flow(
            user_prompt: Any = None,
            deps: Any = None,
            message_history: Any = None,
            run_args: str | None = None,
            **kwargs: Any,
        ) -> AgentRunResult[Any]:
            return await agent.run_flow_body(
                user_prompt, deps=deps, message_history=message_history, run_args=run_args, **kwargs
            )

        agent_flow.__qualname__ = agent_flow.__name__ = self.name.replace(".", "_").replace("-", "_")
        return Flow(
            fn=agent_flow,
            name=self.name,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            validate_parameters=False,
        )

    @property
    def flow(self) -> Flow[..., Any]:
        """The Prefect flow of this agent's runs.

        Its parameters are `user_prompt`, `deps`, `message_history` and any other `Agent.run` keyword argument;
        runs started by `run()` store the arguments that are data in one `run_args` parameter instead (a JSON
        frame), so `resume()` gets them back exactly.
        """
        return self._flow

    @property
    def tasks(self) -> Mapping[str, Task[..., Any]]:
        """The Prefect task of each unit, by unit name."""
        return dict(self._tasks)

    # ----------------------------------------------------------------- engine hooks

    def in_container(self) -> bool:
        container = _CONTAINER.get()
        return container is not None and container.agent is self and FlowRunContext.get() is not None

    @contextlib.asynccontextmanager
    async def _durable_call(
        self, method: Literal["iter", "run_stream", "run_stream_events"], user_prompt: Any, kwargs: dict[str, Any]
    ) -> AsyncGenerator[Any]:
        """As in every engine; in the user's own `@flow` too, whose flow run is then the run's container.

        The run's units are tasks of the user's flow run, so a retry or resume of it skips those that completed,
        as for a run in the agent's own flow.
        """
        context = FlowRunContext.get()
        if context is None or context.flow_run is None or self.in_container():
            async with super()._durable_call(method, user_prompt, kwargs) as value:
                yield value
            return
        key = _container_key(context.flow_run)
        container = _USER_FLOW_CONTAINERS.pop(key, None) or _Container(self, key, b"null")
        _USER_FLOW_CONTAINERS[key] = container  # most recent last: the oldest are dropped first
        while len(_USER_FLOW_CONTAINERS) > _USER_FLOW_CONTAINERS_KEPT:
            del _USER_FLOW_CONTAINERS[next(iter(_USER_FLOW_CONTAINERS))]
        token = _CONTAINER.set(replace(container, agent=self, metadata=_metadata_scope(kwargs.get("metadata"))))
        try:
            async with super()._durable_call(method, user_prompt, kwargs) as value:
                yield value
        finally:
            _CONTAINER.reset(token)

    def new_run_key(self) -> str:
        container = _CONTAINER.get()
        if container is None:
            raise ConfigurationError("new_run_key() called outside a PrefectAgent flow.")  # pragma: no cover
        return f"{container.key}:{next(container.runs)}"

    async def execute_unit(self, unit: Unit, payload: bytes, config: Mapping[str, Any], label: str) -> bytes:
        container = _CONTAINER.get()
        state = current_run(self.name)
        if container is None or state is None:
            raise ConfigurationError("A unit ran outside a PrefectAgent flow.")  # pragma: no cover
        scope = container.scopes.get(state.run_key)
        if scope is None:
            scope = RunScope(
                None,
                self.deps_codec.canonical(state.deps_json),
                container.metadata,
                f"{state.model_key}|{self._model_identity(state.model_key)}",
            )
            container.scopes[state.run_key] = scope
        if unit.kind is UnitKind.MODEL:
            scope = replace(scope, messages=state.log.chunks())
        occurrences = container.occurrences.setdefault(state.run_key, UnitOccurrences())
        fingerprint = occurrences.next(label, unit.kind, payload, scope)
        task = self._tasks[unit.name].with_options(task_run_name=label, **config)
        result = await task(payload, **{FINGERPRINT_PARAMETER: fingerprint, RUN_PARAMETER: state.run_key})
        return result.encode() if isinstance(result, str) else result  # bytes: a result pickled by an older version

    async def publish_live(self, record: str) -> None:
        await publish_live(record)

    async def live_records(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, run_id: str, *, poll_interval: float = 0.5, **options: Any
    ) -> AsyncIterator[str]:
        """The records of the flow run that `run(..., run_id=run_id)` started, or of the flow run of that id."""
        if options:
            raise ConfigurationError(f"watch() on Prefect takes `poll_interval=` only; got {sorted(options)}.")
        async for record in live_records(run_id, self._flow_run_of, poll_interval):
            yield record

    def event_address(self, key: str) -> dict[str, str]:
        context = FlowRunContext.get()
        state = current_run(self.name)
        if context is None or context.flow_run is None or state is None:  # pragma: no cover - waits run in runs
            raise ConfigurationError("An external event wait started outside a PrefectAgent flow run.")
        return {"flow_run": str(context.flow_run.id), "run": state.run_key, "key": key}

    async def ask_in_unit(self, key: str, token: str, ask: Ask) -> JsonValue:
        container = _CONTAINER.get()
        state = current_run(self.name)
        if container is None or state is None:  # pragma: no cover - waits run in runs
            raise ConfigurationError("An external event wait started outside a PrefectAgent flow.")
        fingerprint = hashlib.sha256(f"ask\n{key}".encode()).hexdigest()
        task = self._ask_task.with_options(task_run_name=f"ask/{key}")
        stored: str = await task(token, ask, **{FINGERPRINT_PARAMETER: fingerprint, RUN_PARAMETER: state.run_key})
        data = pydantic_core.from_json(stored)
        asked = _Asked(data["token"], data["answer"], data["at"])
        container.asked[state.run_key, key] = asked
        return asked.answer

    async def wait_for_event(self, key: str, timeout: timedelta | None) -> EventOutcome:
        """Poll the wait's outcome input until it exists; at the timeout, write the timed-out outcome.

        The flow run stays `RUNNING` (its heartbeat goes on) and its process waits. The timeout counts from when
        `ask` ran, so a run resumed after an outage longer than it times out at once, unless an answer came
        during the outage.
        """
        container = _CONTAINER.get()
        state = current_run(self.name)
        assert container is not None and state is not None
        asked = container.asked[state.run_key, key]
        _, address = decode_token(asked.token)
        flow_run_id, name = UUID(address["flow_run"]), input_key(address["run"], address["key"], "event")
        deadline = None if timeout is None else asked.at + timeout.total_seconds()
        async with get_client() as client:
            while True:
                value = await read_input(client, flow_run_id, name)
                if value is not None:
                    return EventOutcome.from_json(value)
                if deadline is not None and time.time() >= deadline:
                    outcome = timed_out(timeout)
                    # An answer written since the last read wins over the timeout.
                    if await write_input(client, flow_run_id, name, outcome.to_json()):
                        return outcome
                    continue
                pause = self._event_poll_seconds
                await asyncio.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.time())))

    def _model_identity(self, model_id: str | None) -> str:
        """The name of the model a model id resolves to, without building it (models are built only in units)."""
        spec = live_override(model_id) if model_id is not None and model_id.startswith("o:") else None
        if spec is None:
            try:
                spec = self._model_spec(model_id)
            except ConfigurationError:
                return "?"  # the unit itself raises the error that says how to fix it
        return spec if isinstance(spec, str) else f"{spec.system}:{spec.model_name}"

    async def run_outside_container(self, user_prompt: Any, **kwargs: Any) -> AgentRunResult[Any]:
        deps = kwargs.get("deps")
        if deps is not None:
            # Fail before a flow run exists: unserializable deps would otherwise fail inside it.
            self.deps_codec.check(deps)
        # Prefect stores flow parameters as JSON and writes '<TypeName>' for what it cannot encode: the run's data
        # goes in one frame of our own instead; what is not data (output_type, a handler) is passed as it is.
        frame, rest = encode_run_args(self.deps_codec, user_prompt, kwargs, current_traceparent())
        frame = await self._parameter_of(frame)
        run_id = kwargs.get("run_id")
        if not isinstance(run_id, str) or FlowRunContext.get() is not None:
            # Without an id (or as a subflow of the user's flow, which owns its own durability): a new flow run.
            return await self._flow(**{RUN_ARGS_PARAMETER: frame}, **rest)
        existing = await self._flow_run_of(run_id)
        if existing is None:
            with tags(RUN_ID_TAG_PREFIX + run_id):
                return await self._persisting_flow()(**{RUN_ARGS_PARAMETER: frame}, **rest)
        state = existing.state
        if state is not None and state.is_completed():
            try:
                return cast(AgentRunResult[Any], await state.aresult())
            except MissingResult as exc:
                raise RunFinishedError(
                    str(existing.id),
                    f"run {run_id!r} completed, but its stored result is gone ({exc})",
                    "start it with a new `run_id` to run it again",
                ) from exc
        # Crashed, killed (stale RUNNING) or failed: go on with the same flow run, skipping completed tasks. A run
        # that is alive or cancelled is refused (`RunStillActiveError`, `RunFinishedError`).
        return await self.resume(existing.id, **rest)

    async def _parameter_of(self, frame: str) -> str:
        """The `run_args` parameter of a frame: the frame, or a reference to it in result storage when it is large.

        Result storage is where resuming finds the run's task results too, so a process that can resume the run
        can read its arguments.
        """
        if len(pydantic_core.to_json(frame)) <= INLINE_RUN_ARGS_BYTES:
            return frame
        data = frame.encode()
        key = f"durable-agents/run-args/{hashlib.sha256(data).hexdigest()}.json"
        await (await self._run_args_storage()).write_path(key, data)
        return _STORED_PREFIX + key

    async def _frame_of(self, parameter: str) -> str:
        """The frame a `run_args` parameter holds or refers to."""
        if not parameter.startswith(_STORED_PREFIX):
            return parameter
        key = parameter.removeprefix(_STORED_PREFIX)
        try:
            return (await (await self._run_args_storage()).read_path(key)).decode()
        except (OSError, ValueError) as exc:
            raise ProtocolError(
                f"The run's arguments were kept in result storage under {key!r}, and this process cannot read them "
                f"({exc}). Fix: resume with the same result storage (`TaskConfig(result_storage=...)`, or Prefect's "
                "default result storage settings) as the process that started the run."
            ) from exc

    async def _run_args_storage(self) -> WritableFileSystem:
        """The base `TaskConfig`'s result storage, else Prefect's default: a settings block, the server's, or local.

        Resolved here rather than with `prefect.results.aget_default_result_storage`, whose client to the server is
        never closed.
        """
        settings = get_current_settings().results
        configured = self.unit_configs.base.get("result_storage") or settings.default_storage_block
        if configured is None:
            async with get_client() as client:
                configured = (await client.read_server_default_result_storage()).default_result_storage_block_id
        if configured is None:
            return LocalFileSystem(basepath=str(settings.local_storage_path))
        return await aresolve_result_storage(configured)

    def _persisting_flow(self) -> Flow[..., Any]:
        """The flow, storing its result: a `run()` of a completed run's `run_id` returns it.

        Only runs with a `run_id` store it, so an output that cannot be pickled fails no other run.
        """
        return self._flow.with_options(persist_result=True)

    async def _flow_run_of(self, run_id: str) -> FlowRun | None:
        """The flow run of this agent that `run(..., run_id=run_id)` started, if any (the oldest, after a race)."""
        async with get_client() as client:
            flow_runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[self.name])),
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[RUN_ID_TAG_PREFIX + run_id])),
            )
        return min(flow_runs, key=lambda r: (r.created is None, r.created or datetime.min), default=None)

    # ----------------------------------------------------------------- the flow

    async def run_flow_body(
        self, user_prompt: Any = None, *, run_args: str | None = None, **kwargs: Any
    ) -> AgentRunResult[Any]:
        """The body of the agent's flow: one durable agent run.

        Args:
            user_prompt: The prompt, when the run's arguments are not in `run_args` (deployments).
            run_args: The run's arguments as a frame of `_run_args.py`, when `run()` started the run.
            **kwargs: Other `Agent.run` arguments; they override those in `run_args`. Without `run_args`, `deps` and
                `message_history` may come as JSON data (deployment parameters).
        """
        context = FlowRunContext.get()
        if context is None or context.flow_run is None:
            raise ConfigurationError("run_flow_body() must run inside a Prefect flow run.")
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        caller_trace: str | None = None
        if run_args is not None:
            frame = await self._frame_of(run_args)
            user_prompt, stored = decode_run_args(self.deps_codec, frame)
            kwargs = {**stored, **kwargs}
            caller_trace = run_args_trace(frame)
        else:
            # Parameters of a deployment (or of a run started by an older durable_agents) are JSON data.
            kwargs = decode_json_args(kwargs)
            if "deps" in kwargs:
                kwargs["deps"] = self._coerce_deps(kwargs["deps"])
        token = _CONTAINER.set(
            _Container(self, _container_key(context.flow_run), _metadata_scope(kwargs.get("metadata")))
        )
        heartbeat = asyncio.create_task(self._heartbeat(context.flow_run.id))
        try:
            # The caller's trace context, as stored with the run's arguments: the same when the run is resumed.
            with attach_traceparent(caller_trace):
                return await self.run_in_container(user_prompt, **kwargs)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            _CONTAINER.reset(token)

    async def _heartbeat(self, flow_run_id: UUID) -> None:
        """Mark the flow run alive every `heartbeat_seconds` (see `resume()`), until cancelled."""
        async with get_client() as client:
            while True:
                try:
                    await client.update_flow_run_labels(flow_run_id, {HEARTBEAT_LABEL: time.time()})
                except Exception as exc:  # a missed mark must not fail the run; the next one may land
                    _LOG.warning("Could not mark flow run %s alive: %r", flow_run_id, exc)
                await asyncio.sleep(self._heartbeat_seconds)

    def _coerce_deps(self, deps: Any) -> Any:
        deps_type = self.deps_codec.deps_type
        try:
            if isinstance(deps, deps_type):
                return deps
        except TypeError:
            pass
        if isinstance(deps, dict | list | str | int | float | bool):
            try:
                return self.deps_codec.decode(TypeAdapter(Any).dump_json(deps))
            except Exception as exc:
                raise UnserializableDepsError(
                    f"The flow parameter `deps` ({deps!r}) does not validate as deps_type {deps_type!r}: {exc}. "
                    "Fix: pass deps as the JSON form of the agent's deps_type."
                ) from exc
        return deps

    async def resume(
        self, flow_run_id: UUID | str, *, stale_after: float | None = None, **overrides: Any
    ) -> AgentRunResult[Any]:
        """Resume a flow run of this agent whose process crashed or was killed, in this or another process.

        The flow body runs again in this process with the same flow run id and the run's stored arguments; tasks
        that completed before the crash return their stored results instead of running. Before anything runs,
        the run is checked, and refused with a
        [`ResumeRefusedError`][durable_agents.exceptions.ResumeRefusedError] (the run is left as it was) when:

        - no flow run has this id ([`RunNotFoundError`][durable_agents.exceptions.RunNotFoundError]);
        - it is a run of another flow ([`ForeignRunError`][durable_agents.exceptions.ForeignRunError]);
        - it completed, was cancelled or is being cancelled
          ([`RunFinishedError`][durable_agents.exceptions.RunFinishedError]);
        - it was started with arguments that are not data (an `output_type`, a handler) that are not among
          `overrides` ([`RunArgumentsMissingError`][durable_agents.exceptions.RunArgumentsMissingError]);
        - it is alive: `RUNNING` or `PENDING` with a heartbeat newer than `stale_after` seconds (runs without a
          heartbeat: a state change of the flow run or one of its task runs that recent), or `SCHEDULED`,
          `PAUSED` or awaiting a retry, which its engine will run
          ([`RunStillActiveError`][durable_agents.exceptions.RunStillActiveError]).

        `CRASHED`, `FAILED` and stale `RUNNING` runs are resumed; the task runs the dead attempt left unfinished
        are marked `CRASHED` first.

        Args:
            flow_run_id: The id of the flow run to resume.
            stale_after: Seconds without a heartbeat after which a `RUNNING` run is taken for dead; default three
                `heartbeat_seconds`. Clocks of the two machines must agree to within a fraction of it.
            **overrides: Run arguments to pass instead of the stored ones, e.g. an `event_stream_handler` or an
                `output_type`, which cannot be stored on the server.
        """
        run_args = None
        async with get_client() as client:
            flow_run = await self._resumable(
                client, str(flow_run_id), 3 * self._heartbeat_seconds if stale_after is None else stale_after
            )
            run_args = flow_run.parameters.get(RUN_ARGS_PARAMETER)
            missing = (
                [k for k in unstored_run_args(await self._frame_of(run_args)) if k not in overrides]
                if isinstance(run_args, str)
                else []
            )
            if missing:
                raise RunArgumentsMissingError(
                    str(flow_run_id),
                    f"it was started with {', '.join(missing)}, which cannot be stored on the server",
                    f"pass {'them' if len(missing) > 1 else 'it'} again, e.g. `resume(run_id, {missing[0]}=...)` "
                    "(`None` to go on without)",
                )
            await self._crash_unfinished_tasks(client, flow_run)
        parameters: dict[str, Any] = dict(flow_run.parameters)
        stored_kwargs = cast(dict[str, Any], parameters.pop("kwargs", None) or {})
        if isinstance(run_args, str):
            # Started by `run()`: every argument that is data is in the frame; the others were never stored.
            parameters = {RUN_ARGS_PARAMETER: run_args}
        else:
            # Started from a deployment, whose parameters are JSON data as given. A run started by an older
            # durable_agents has '<TypeName>' placeholders among its other arguments.
            parameters = {k: v for k, v in parameters.items() if v is not None}
            parameters.update({k: v for k, v in stored_kwargs.items() if not _is_placeholder(v)})
        parameters.update(overrides)
        named = {"user_prompt", "deps", "message_history", RUN_ARGS_PARAMETER}
        flow_parameters = {k: v for k, v in parameters.items() if k in named}
        flow_parameters["kwargs"] = {k: v for k, v in parameters.items() if k not in named}
        tagged = any(t.startswith(RUN_ID_TAG_PREFIX) for t in flow_run.tags)
        flow = self._persisting_flow() if tagged else self._flow
        _log.info("Resuming flow run %s of agent %r (state %s).", flow_run.id, self.name, flow_run.state_name)
        return cast(AgentRunResult[Any], await run_flow_async(flow, flow_run=flow_run, parameters=flow_parameters))

    async def _resumable(self, client: PrefectClient, run_id: str, stale_after: float) -> FlowRun:
        """The flow run, if `resume()` may run it (see there); otherwise a `ResumeRefusedError`."""
        try:
            flow_run = await client.read_flow_run(UUID(run_id))
        except (ValueError, ObjectNotFound):
            raise RunNotFoundError(
                run_id,
                "the Prefect server has no flow run with this id",
                "pass the id of a flow run of this agent (`PrefectAgent.run()` starts one; the Prefect UI lists them) "
                "and check that PREFECT_API_URL points at the server that ran it",
            ) from None
        flow = await client.read_flow(flow_run.flow_id)
        if flow.name != self.name:
            raise ForeignRunError(
                run_id,
                f"it is a run of flow {flow.name!r}, not of agent {self.name!r}",
                f"resume it with the PrefectAgent of agent {flow.name!r}, or pass a run of {self.name!r}",
            )
        state = flow_run.state
        kind = state.type if state is not None else StateType.PENDING
        if kind in (StateType.COMPLETED, StateType.CANCELLED, StateType.CANCELLING):
            raise RunFinishedError(
                run_id,
                f"it is {kind.value}, so resuming would run it again",
                "start a new run with `run()` (pass `message_history=` to continue its conversation)",
            )
        if kind in (StateType.SCHEDULED, StateType.PAUSED) or (state is not None and state.name == "AwaitingRetry"):
            raise RunStillActiveError(
                run_id,
                f"it is {state.name if state is not None else kind.value} and Prefect will run it",
                "let Prefect run it, or cancel it and start a new run",
            )
        if kind in (StateType.RUNNING, StateType.PENDING):
            age = time.time() - await self._last_sign_of_life(client, flow_run)
            if age < stale_after:
                raise RunStillActiveError(
                    run_id,
                    f"it is {kind.value} and gave a sign of life {age:.0f}s ago (a run is taken for dead after "
                    f"{stale_after:.0f}s without one), so a process may still be running it",
                    f"if its process is gone, resume it again in {stale_after - age:.0f}s; otherwise let it finish",
                )
        return flow_run

    async def _last_sign_of_life(self, client: PrefectClient, flow_run: FlowRun) -> float:
        beat = flow_run.labels.get(HEARTBEAT_LABEL)
        if isinstance(beat, int | float) and not isinstance(beat, bool):
            return float(beat)
        # A run without heartbeats (started by an older durable_agents): its latest state change.
        times: list[datetime | None] = [flow_run.state.timestamp if flow_run.state is not None else flow_run.created]
        task_runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
        times.extend(t.state.timestamp for t in task_runs if t.state is not None)
        return max(t.timestamp() for t in times if t is not None)

    async def _crash_unfinished_tasks(self, client: PrefectClient, flow_run: FlowRun) -> None:
        """Mark the task runs that the dead attempt left running or pending `CRASHED`: nothing will finish them."""
        task_runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
        for task_run in task_runs:
            if task_run.state is not None and not task_run.state.is_final():
                await client.set_task_run_state(
                    task_run.id,
                    Crashed(message=f"The process running flow run {flow_run.id} died; the run was resumed."),
                    force=True,
                )

    # ----------------------------------------------------------------- deployments

    def to_deployment(
        self,
        name: str,
        *,
        cron: str | Iterable[str] | None = None,
        interval: float | timedelta | Iterable[float | timedelta] | None = None,
        rrule: str | Iterable[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> RunnerDeployment:
        """A deployment of the agent's flow, for `prefect.serve(...)` alongside other deployments.

        Args:
            name: The deployment's name.
            cron: Cron schedule(s), e.g. `'0 9 * * *'`.
            interval: Interval schedule(s), in seconds or as `timedelta`.
            rrule: iCal recurrence rule(s).
            parameters: The run's parameters: `user_prompt`, `deps` (as JSON data), `message_history`, ...
            **kwargs: Passed to `Flow.to_deployment` (tags, description, concurrency_limit...).
        """
        deployment = cast(
            RunnerDeployment,
            self._flow.to_deployment(
                # Prefect's to_deployment returns a coroutine when called from async code; ours is always sync.
                _sync=True,  # pyright: ignore[reportCallIssue]
                name=name,
                cron=cron,
                interval=interval,
                rrule=rrule,
                parameters=_deployment_parameters(parameters),
                **kwargs,
            ),
        )
        # The flow function lives in this package; the process that runs a scheduled run must find the flow
        # through the module that defines the PrefectAgent instead.
        attr = self._module_attribute()
        if self._module == "__main__" or self._module.startswith("__"):
            if self._file is None:
                raise ConfigurationError(
                    f"PrefectAgent {self.name!r} was built interactively; a deployment needs it in a file. "
                    "Fix: build it at module level in a script or module."
                )
            path = Path(self._file).absolute()
            try:
                entry = path.relative_to(Path.cwd().absolute())
            except ValueError:
                entry = Path(os.path.relpath(path, Path.cwd().absolute()))
            deployment.entrypoint = f"{entry}:{attr}.flow"
        else:
            deployment.entrypoint = f"{self._module}:{attr}.flow"
            deployment._entrypoint_type = EntrypointType.MODULE_PATH  # pyright: ignore[reportPrivateUsage]
        return deployment

    def _module_attribute(self) -> str:
        module = sys.modules.get(self._module)
        for key, value in vars(module).items() if module is not None else ():
            if value is self:
                return key
        raise ConfigurationError(
            f"PrefectAgent {self.name!r} is not a module-level variable of {self._module!r}, so a deployment's "
            "process cannot find it. Fix: assign it at module level, e.g. `prefect_agent = PrefectAgent(agent)`."
        )

    def serve(
        self,
        name: str,
        *,
        cron: str | Iterable[str] | None = None,
        interval: float | timedelta | Iterable[float | timedelta] | None = None,
        rrule: str | Iterable[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Serve the agent's flow as a deployment in this process (blocks), e.g. on a cron schedule.

        Takes the arguments of [`to_deployment`][durable_agents.prefect.PrefectAgent.to_deployment] and the
        extra ones of `Flow.serve`. Call it under `if __name__ == "__main__":`.
        """
        deploy_keys = {"tags", "description", "version", "concurrency_limit", "paused", "enforce_parameter_schema"}
        deployment = self.to_deployment(
            name,
            cron=cron,
            interval=interval,
            rrule=rrule,
            parameters=parameters,
            **{k: v for k, v in kwargs.items() if k in deploy_keys},
        )
        serve(deployment, **{k: v for k, v in kwargs.items() if k not in deploy_keys})


def _container_key(flow_run: FlowRun) -> str:
    """What the agent run keys of a flow run start with, and so its units' cache keys: the same in every attempt.

    A flow run's retries and resumes keep its id. A subflow (the agent called in a user's flow, or in another agent's
    tool) does not: a retry of the parent starts a new subflow run for a call whose subflow failed or completed
    without a stored result. The task run that tracks the call in the parent flow run is the same in every attempt
    of the parent (Prefect finds it by the call's position), so a subflow is keyed by it and the parent's retry
    skips the units the earlier attempt completed.
    """
    if flow_run.parent_task_run_id is not None:
        return f"call-{flow_run.parent_task_run_id}"
    return str(flow_run.id)


def _deployment_parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    known = {"user_prompt", "deps", "message_history"}
    params = dict(parameters or {})
    extra = {k: params.pop(k) for k in list(params) if k not in known}
    if extra:
        params["kwargs"] = extra
    return params


def _is_placeholder(value: Any) -> bool:
    # Prefect stores parameters it cannot encode as JSON as '<TypeName>'.
    return isinstance(value, str) and value.startswith("<") and value.endswith(">")


class _ToolLayer(dict[str, Mapping[str, Any]]):
    """Toolset configs with `tool_task_config` under each: a toolset id missing here still gets the tool layer."""

    def __init__(self, tool_layer: Mapping[str, Any], toolsets: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__({k: {**tool_layer, **v} for k, v in toolsets.items()})
        self._tool_layer = dict(tool_layer)

    def get(self, key: str, default: Any = None) -> Any:  # pyright: ignore[reportIncompatibleMethodOverride]
        value = super().get(key)
        return value if value is not None else (self._tool_layer or default)
