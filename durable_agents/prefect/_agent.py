"""`PrefectAgent`: a pydantic-ai agent whose runs are Prefect flows and whose I/O operations are Prefect tasks."""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import sys
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pydantic_core
from prefect import Flow, Task, serve
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.deployments.runner import RunnerDeployment
from prefect.flow_engine import run_flow_async
from prefect.types.entrypoint import EntrypointType
from pydantic import TypeAdapter
from pydantic_ai.agent import AbstractAgent, EventStreamHandler
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models import Model
from pydantic_ai.output import OutputDataT
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT

from .._agent import DurableAgent, ParallelExecutionMode
from .._config import UnitConfigs, config_keys
from .._engine import PREFECT_CAPABILITIES
from .._model_ids import live_override
from .._policy import pause_before_retry
from .._run import current_run
from .._units import Unit, UnitKind
from ..exceptions import ConfigurationError, DuplicateAgentNameError, UnknownConfigKeyError, UnserializableDepsError
from ._cache import FINGERPRINT_PARAMETER, RUN_PARAMETER, RUN_SCOPED, RunScope, UnitOccurrences
from ._config import TaskConfig

__all__ = ["PrefectAgent"]

_HISTORY_TA: TypeAdapter[list[ModelMessage]] = TypeAdapter(list[ModelMessage])

DEFAULT_CACHE_EXPIRATION = timedelta(days=7)
"""How long a unit's stored result can be reused (by a resume, a flow retry, or `CROSS_RUN`) unless
`TaskConfig(cache_expiration=...)` says otherwise."""


@dataclass
class _Container:
    """The flow body of one `PrefectAgent` run in progress (one per flow run attempt)."""

    agent: PrefectAgent[Any, Any]
    flow_run_id: str
    metadata: bytes
    """The run's `metadata` as JSON: model request keys include it (tool keys see it in the run context)."""
    runs: itertools.count[int] = field(default_factory=itertools.count)
    occurrences: dict[str, UnitOccurrences] = field(default_factory=dict[str, UnitOccurrences])
    scopes: dict[str, RunScope] = field(default_factory=dict[str, RunScope])
    """Each agent run's scope (canonical deps, metadata, model identity), by run key."""


_CONTAINER: ContextVar[_Container | None] = ContextVar("durable_agents_prefect_container", default=None)

# Every PrefectAgent of this process by name, so a pickled reference (Prefect bundles, `serve`) finds it again.
_REGISTRY: dict[str, PrefectAgent[Any, Any]] = {}


def _defining_module() -> tuple[str, str | None, int]:
    """Module name, file and line of the code that built the wrapper (the first frame outside this package)."""
    frame = sys._getframe(1)  # pyright: ignore[reportPrivateUsage]
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("durable_agents.") and not module.startswith("pydantic_ai"):
            return module, frame.f_globals.get("__file__"), frame.f_lineno
        frame = frame.f_back
    return "__main__", None, 0  # pragma: no cover


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
        require: Iterable[str] = (),
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
            require: Capabilities the engine must have.
        """
        tool_layer: Mapping[str, Any] = tool_task_config or {}
        toolsets = dict(toolset_task_configs or {})
        configs = UnitConfigs(
            known_keys=config_keys(TaskConfig),
            config_name="TaskConfig",
            base=task_config or {},
            model=model_task_config or {},
            events=event_stream_handler_task_config or {},
            toolsets=_ToolLayer(tool_layer, toolsets),
            tools=tool_task_config_by_name or {},
        )
        unknown = sorted(k for k in tool_layer if k not in configs.known_keys)
        if unknown:
            raise UnknownConfigKeyError("tool_task_config", unknown, sorted(configs.known_keys))
        super().__init__(
            wrapped,
            unit_configs=configs,
            models=models,
            event_stream_handler=event_stream_handler,
            parallel_execution_mode=parallel_execution_mode,
            require=require,
        )
        self._module, self._file, line = _defining_module()
        existing = _REGISTRY.get(self.name)
        if existing is not None and existing._origin != (self._file, line):
            raise DuplicateAgentNameError(self.name, self.engine)
        self._origin = (self._file, line)
        self._tasks: dict[str, Task[..., Any]] = {unit.name: self._make_task(unit) for unit in self.units}
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

        async def run_unit(payload: bytes, fingerprint: str, run: str) -> bytes:
            # A flow started by a tool (an agent delegating to another) is a new container, not this one.
            token = _CONTAINER.set(None)
            try:
                return await body(payload)
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
            cache_expiration=DEFAULT_CACHE_EXPIRATION,
        )

    def _make_flow(self, retries: int, retry_delay_seconds: float) -> Flow[..., Any]:
        agent = self

        async def agent_flow(
            user_prompt: Any = None,
            deps: Any = None,
            message_history: Any = None,
            **kwargs: Any,
        ) -> AgentRunResult[Any]:
            return await agent.run_flow_body(user_prompt, deps=deps, message_history=message_history, **kwargs)

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

        Its parameters are `user_prompt`, `deps`, `message_history` and any other `Agent.run` keyword argument.
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

    def new_run_key(self) -> str:
        container = _CONTAINER.get()
        if container is None:
            raise ConfigurationError("new_run_key() called outside a PrefectAgent flow.")  # pragma: no cover
        return f"{container.flow_run_id}:{next(container.runs)}"

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
        return await task(payload, **{FINGERPRINT_PARAMETER: fingerprint, RUN_PARAMETER: state.run_key})

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
        return await self._flow(user_prompt, **kwargs)

    # ----------------------------------------------------------------- the flow

    async def run_flow_body(self, user_prompt: Any = None, **kwargs: Any) -> AgentRunResult[Any]:
        """The body of the agent's flow: one durable agent run. Parameters may come as JSON (deployments, resume)."""
        context = FlowRunContext.get()
        if context is None or context.flow_run is None:
            raise ConfigurationError("run_flow_body() must run inside a Prefect flow run.")
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if "deps" in kwargs:
            kwargs["deps"] = self._coerce_deps(kwargs["deps"])
        history = kwargs.get("message_history")
        if isinstance(history, list) and any(isinstance(m, dict) for m in cast(list[Any], history)):
            kwargs["message_history"] = _HISTORY_TA.validate_python(history)
        metadata = kwargs.get("metadata")
        scope = pydantic_core.to_json(metadata, fallback=lambda v: f"<{type(v).__qualname__}>")  # pyright: ignore[reportUnknownLambdaType]
        token = _CONTAINER.set(_Container(self, str(context.flow_run.id), scope))
        try:
            return await self.run_in_container(user_prompt, **kwargs)
        finally:
            _CONTAINER.reset(token)

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

    async def resume(self, flow_run_id: UUID | str, **overrides: Any) -> AgentRunResult[Any]:
        """Resume a flow run of this agent that crashed (or was killed) in this or another process.

        The flow body runs again in this process with the same flow run id and the parameters the run was
        started with; tasks that completed before the crash return their stored results instead of running.

        Args:
            flow_run_id: The id of the flow run to resume.
            **overrides: Parameters to pass instead of the stored ones, e.g. an `event_stream_handler` or an
                `output_type` that could not be stored on the server.
        """
        async with get_client() as client:
            flow_run = await client.read_flow_run(UUID(str(flow_run_id)))
        parameters: dict[str, Any] = dict(flow_run.parameters)
        stored_kwargs = cast(dict[str, Any], parameters.pop("kwargs", None) or {})
        parameters.update({k: v for k, v in stored_kwargs.items() if not _is_placeholder(v)})
        parameters = {k: v for k, v in parameters.items() if not _is_placeholder(v)}
        parameters.update(overrides)
        known = {"user_prompt", "deps", "message_history"}
        flow_parameters = {k: v for k, v in parameters.items() if k in known}
        flow_parameters["kwargs"] = {k: v for k, v in parameters.items() if k not in known}
        return cast(
            AgentRunResult[Any], await run_flow_async(self._flow, flow_run=flow_run, parameters=flow_parameters)
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
