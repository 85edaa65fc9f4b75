"""The behaviour every durable agent shares, whatever its engine.

[`DurableAgent`][durable_agents.DurableAgent] is a pydantic-ai `WrapperAgent`. Built once per
agent, before the engine starts, it:

- checks the agent (a name is required) and the unit configs (keys are validated);
- finds every leaf toolset and wraps it (see `_toolset.py`), and builds the agent's units:
  [`units`][durable_agents.DurableAgent.units] is what engine adapters register;
- at run time, inside a container, runs the wrapped agent with its model and toolsets replaced
  by the durable stand-ins, so orchestration (the agent graph, history processors, usage limits,
  output validation) stays in the container and every I/O operation becomes a unit.

Engine adapters subclass it and implement four things: whether the code is in a container
([`in_container`][durable_agents.DurableAgent.in_container]), a deterministic key per run
([`new_run_key`][durable_agents.DurableAgent.new_run_key]), how to run a unit
([`execute_unit`][durable_agents.DurableAgent.execute_unit]), and what `run()` does outside a
container ([`run_outside_container`][durable_agents.DurableAgent.run_outside_container]).

| method | inside a container | outside a container |
|---|---|---|
| `run`, `run_sync` | durable run: units for every I/O | engine-specific (start a container, or bare) |
| `iter` | node by node over a durable run | like the bare agent (not durable) |
| `run_stream`, `run_stream_events` | buffered over a durable run (responses whole) | like the bare agent |
| `override(model=...)` | honoured by durable runs (as is the plain agent's) | like the bare agent |
| `override(tools=/toolsets=)` | `ContainerUsageError` | `ContainerUsageError` (fixed at wrapping) |
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    ExitStack,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, ClassVar, Literal, overload

import pydantic_core
from pydantic import JsonValue
from pydantic_ai import (
    AgentCapability,
    AgentSpec,
    CancellationToken,
    Conversation,
    DeferredToolResults,
    ModelMessage,
    RunUsage,
    UsageLimits,
    UserContent,
)
from pydantic_ai.agent import (
    AbstractAgent,
    AgentModelSettings,
    AgentRetries,
    AgentRunEvents,
    EventStreamHandler,
    WrapperAgent,
)
from pydantic_ai.agent.abstract import AgentInstructions, AgentMetadata, RunOutputDataT
from pydantic_ai.external_events import external_event_scope
from pydantic_ai.messages import AgentStreamEvent
from pydantic_ai.models import KnownModelName, Model, infer_model
from pydantic_ai.output import OutputDataT, OutputSpec
from pydantic_ai.result import StreamedRunResult
from pydantic_ai.run import AgentRun, AgentRunResult
from pydantic_ai.tools import AgentDepsT
from pydantic_ai.toolsets import AbstractToolset, ExternalToolset, FunctionToolset
from pydantic_ai.toolsets.abstract import AGENT_TOOLSET_ID
from pydantic_ai.workspaces import WorkspaceBackend, WorkspaceRef

from ._codec import DepsCodec, check_size
from ._config import UnitConfigs
from ._context import check_carried
from ._delegation import referenced_agents, with_usage_back
from ._engine import EngineCapabilities
from ._events import collect_events, events_unit_body
from ._external import EventOutcome, RunWaiter
from ._fingerprint import agent_fingerprint
from ._history import HISTORY_CACHE, MessageLog
from ._inputs import check_run_inputs
from ._live import LiveEvents, live_events_option, watch_records
from ._model import DurableModel, model_unit_body
from ._model_ids import (
    NamedModel,
    live_override,
    override_model_id,
    plain_agent_override,
    process_override,
    process_override_of,
)
from ._run import CURRENT_RUN, RunState
from ._telemetry import RunTrace, container_log, record_unit, replay_scope, run_span, traced_body
from ._toolset import DurableToolset, is_per_step, is_static, list_unit_body, tool_unit_body
from ._units import Unit, UnitKind, unit_name
from .exceptions import (
    AgentNameRequiredError,
    ConfigurationError,
    ContainerUsageError,
    ToolsetIdRequiredError,
    UnregisteredModelError,
    UnsupportedCapabilityError,
)

__all__ = ["DurableAgent", "ParallelExecutionMode"]

ParallelExecutionMode = Literal["parallel_ordered_events", "sequential"]
"""How tool calls of one model response run in a container: concurrently with their events in call
order (the default), or one after another."""

_RUN_HANDLER: ContextVar[EventStreamHandler[Any] | None] = ContextVar("durable_agents_run_handler", default=None)

# How the agent's own function toolset (id '<agent>') is called in unit names.
_AGENT_TOOLSET_UNIT_ID = "agent"


def given_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of a run method that are not at their default, from its `locals()` (taken before any other).

    The run's internals pass them on as a dict: an argument left out means its default, as in pydantic-ai.
    """
    return {
        name: value
        for name, value in arguments.items()
        if name not in ("self", "user_prompt") and value is not None and not (name == "infer_name" and value is True)
    }


SourceSite = tuple[str, str | None, int]
"""Module name, file and line of a place in the source."""


def defining_site() -> SourceSite:
    """Module name, file and line of the code that is building a wrapper (the first frame outside this package)."""
    frame = sys._getframe(1)  # pyright: ignore[reportPrivateUsage]
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("durable_agents.") and not module.startswith("pydantic_ai"):
            return module, frame.f_globals.get("__file__"), frame.f_lineno
        frame = frame.f_back
    return "__main__", None, 0  # pragma: no cover


class DurableAgent(WrapperAgent[AgentDepsT, OutputDataT], ABC):
    """A pydantic-ai agent whose runs are durable on an engine. Engine adapters subclass it."""

    engine: ClassVar[str]
    """The engine's registry name."""
    capabilities: ClassVar[EngineCapabilities]
    """What the engine can do."""
    max_payload_bytes: int | None = None
    """The largest unit input or output the engine accepts, if it has a limit."""
    STAGED_HISTORY_PIECES: ClassVar[int] = 4
    """How many unit inputs' worth of `message_history` a run may start with (it is sent ahead in pieces)."""

    @property
    def max_history_bytes(self) -> int | None:
        """The largest `message_history` (encoded) a run may start with; `None`: no limit.

        A longer history is sent ahead of the first model request in pieces that each fit `max_payload_bytes`, up
        to `STAGED_HISTORY_PIECES` of them; beyond that a run is refused before it starts, with the fix.
        """
        return None if self.max_payload_bytes is None else self.STAGED_HISTORY_PIECES * self.max_payload_bytes

    containers_see_caller_context: ClassVar[bool] = True
    """Whether a container runs in the context of the code that started it, and so sees its `override(model=...)`.

    Where it does not (Temporal runs workflow code on the worker's own threads), the wrapper's model overrides are
    also kept by agent name for the whole process, and containers of this process look them up there."""

    def __init__(
        self,
        wrapped: AbstractAgent[AgentDepsT, OutputDataT],
        *,
        unit_configs: UnitConfigs,
        models: Mapping[str, Model | str] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        parallel_execution_mode: ParallelExecutionMode = "parallel_ordered_events",
        require: Iterable[str] = (),
        live_events: LiveEvents | bool | None = None,
    ) -> None:
        """Wrap `wrapped` for durable execution.

        Args:
            wrapped: The agent to make durable. It must have a `name`.
            unit_configs: The engine's per-unit configs, layered (see `_config.py`).
            models: Models a run may select with `run(model='<key>')`, besides the agent's own model and
                `'provider:model'` strings. Model instances must be registered here to be passed to `run()` in a
                container. An agent without a model of its own uses the first one.
            event_stream_handler: Called with the live model stream inside model units and with agent-level
                events through events units. Defaults to the agent's own handler.
            parallel_execution_mode: How tool calls of one model response run; both choices are deterministic.
            require: Capabilities the engine must have; a missing one fails here, not mid-run.
            live_events: Publish each run's agent events, so that [`watch()`][durable_agents.DurableAgent.watch]
                can follow the run from another process (`True`: with the default `LiveEvents()`).
        """
        super().__init__(wrapped)
        name = wrapped.name
        if not name:
            raise AgentNameRequiredError()
        self._name = name
        self.origin: SourceSite = defining_site()
        """Where the code that built this wrapper is: module name, file and line."""
        self.capabilities.check(self.engine, require)
        if parallel_execution_mode not in ("parallel_ordered_events", "sequential"):
            raise UnsupportedCapabilityError(
                f"parallel_execution_mode={parallel_execution_mode!r} is not deterministic enough for a durable run. "
                "Use 'parallel_ordered_events' (concurrent, events in call order) or 'sequential'."
            )
        self._parallel_mode: ParallelExecutionMode = parallel_execution_mode
        self.live_events: LiveEvents | None = live_events_option(live_events)
        """How runs publish their events for watchers; `None`: they do not."""
        self.unit_configs = unit_configs
        self.deps_codec = DepsCodec(wrapped.deps_type)
        self._models: dict[str, Model | str] = dict(models or {})
        for key, value in self._models.items():
            if not isinstance(key, str) or not isinstance(value, Model | str):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise ConfigurationError(
                    f"models= maps names to Model instances or 'provider:model' strings; got {key!r}: {value!r}."
                )
        self._handler: EventStreamHandler[Any] | None = event_stream_handler or wrapped.event_stream_handler
        self._unit_models: dict[str | None, Model] = {}
        self._model_override: ContextVar[Model | str | None] = ContextVar(
            f"durable_agents_model_override_{name}", default=None
        )

        model_name, events_name = unit_name(name, UnitKind.MODEL), unit_name(name, UnitKind.EVENTS)
        self.model_unit = Unit(
            model_name,
            UnitKind.MODEL,
            traced_body(self, model_name, functools.partial(model_unit_body, self)),
            unit_configs.for_model(),
        )
        self.events_unit = Unit(
            events_name,
            UnitKind.EVENTS,
            traced_body(self, events_name, functools.partial(events_unit_body, self)),
            unit_configs.for_events(),
        )
        self._leaves: dict[str, DurableToolset] = {}
        self._delegating: dict[tuple[int, str], bool] = {}
        self._toolsets: list[AbstractToolset[Any]] = [ts.visit_and_replace(self._wrap_leaf) for ts in wrapped.toolsets]
        self._check_tool_opt_outs()

    # ----------------------------------------------------------------- construction helpers

    def _wrap_leaf(self, leaf: AbstractToolset[Any]) -> AbstractToolset[Any]:
        if isinstance(leaf, DurableToolset | ExternalToolset):
            return leaf  # external tools are never called by the agent: nothing to make durable
        raw_id = leaf.id
        if raw_id is None:
            raise ToolsetIdRequiredError(leaf.label, self._name)
        toolset_id = _AGENT_TOOLSET_UNIT_ID if raw_id == AGENT_TOOLSET_ID else raw_id
        if toolset_id in self._leaves:
            raise ConfigurationError(
                f"Two toolsets of agent {self._name!r} have the id {toolset_id!r}; unit names would collide. "
                "Fix: give each toolset a unique `id`."
            )
        static = is_static(leaf)
        durable = DurableToolset(
            wrapped=leaf, owner=self, toolset_id=toolset_id, static=static, per_step=is_per_step(leaf)
        )
        call_name = unit_name(self._name, UnitKind.TOOL, toolset_id)
        durable.call_unit = Unit(
            call_name,
            UnitKind.TOOL,
            traced_body(self, call_name, functools.partial(tool_unit_body, self, durable)),
            self.unit_configs.for_toolset(toolset_id),
            toolset_id,
        )
        if not static:
            list_name = unit_name(self._name, UnitKind.LIST, toolset_id)
            durable.list_unit = Unit(
                list_name,
                UnitKind.LIST,
                traced_body(self, list_name, functools.partial(list_unit_body, self, durable)),
                self.unit_configs.for_toolset(toolset_id),
                toolset_id,
            )
        self._leaves[toolset_id] = durable
        return durable

    def _check_tool_opt_outs(self) -> None:
        static_tools = {
            tool: leaf
            for leaf in self._leaves.values()
            if leaf.static and isinstance(leaf.wrapped, FunctionToolset)
            for tool in leaf.wrapped.tools
        }
        for tool_name, cfg in self.unit_configs.tools.items():
            if cfg is None and tool_name not in static_tools:
                raise ConfigurationError(
                    f"Tool {tool_name!r} opted out of running as a unit (config None), but it is not a function tool "
                    f"of agent {self._name!r}. Only function tools can run inline in the container; tools of MCP "
                    "servers and dynamic toolsets always run as units. Fix: remove the None entry or correct the name."
                )

    # ----------------------------------------------------------------- what adapters register

    @property
    def name(self) -> str:
        """The agent's name; every unit name starts with it."""
        return self._name

    @name.setter
    def name(self, value: str | None) -> None:  # pyright: ignore[reportIncompatibleVariableOverride]
        raise ConfigurationError("A durable agent's name is fixed when it is wrapped: units are named after it.")

    @property
    def units(self) -> list[Unit]:
        """Every unit of this agent, for engine adapters to register."""
        units = [self.model_unit, self.events_unit]
        for leaf in self._leaves.values():
            units.extend(u for u in (leaf.list_unit, leaf.call_unit) if u is not None)
        return units

    def fingerprint(self) -> str:
        """A digest of everything this agent's recorded runs depend on: tools' code, prompts, output type, units.

        The same in every process that runs the same agent code, and different when a deploy changes what a
        recovered run would execute (see `_fingerprint.py` for what goes in). DBOS's application version is
        derived from it.
        """
        return agent_fingerprint(
            self.wrapped,
            name=self._name,
            unit_names=(unit.name for unit in self.units),
            toolsets={toolset_id: leaf.wrapped for toolset_id, leaf in self._leaves.items()},
            models=self._models,
        )

    def rebuilds(self, earlier: DurableAgent[Any, Any]) -> bool:
        """Whether this wrapper is `earlier` built again, rather than another agent with the same name.

        The one rule every engine's name registry applies. An agent is built again when the code that builds it
        runs again (a module reloaded, a script loaded under another name to resolve a pickled reference): same
        engine, same source line, and the same [`fingerprint`][durable_agents.DurableAgent.fingerprint] (tools'
        code, prompts, output type, models). Anything else with the name is another agent, even when it is built
        on the same line (by an application's helper function): registering it would make recovery and pickled
        references find the wrong agent, so engines refuse it with `DuplicateAgentNameError`.
        """
        if earlier is self:
            return True
        return (
            type(earlier) is type(self)
            and earlier.name == self.name
            and earlier.origin[1:] == self.origin[1:]
            and earlier.fingerprint() == self.fingerprint()
        )

    @property
    def event_stream_handler(self) -> EventStreamHandler[AgentDepsT] | None:
        """The handler units call (the one given to the wrapper, else the agent's)."""
        return self._handler

    @property
    def toolsets(self) -> Sequence[AbstractToolset[AgentDepsT]]:
        """The agent's toolsets, with every leaf replaced by its durable stand-in."""
        return self._toolsets

    # ----------------------------------------------------------------- engine hooks

    @abstractmethod
    def in_container(self) -> bool:
        """Whether the calling code runs inside a container of this engine, where a run of this agent is durable."""

    @abstractmethod
    def new_run_key(self) -> str:
        """A key unique to this agent run, and the same when the container is replayed."""

    @abstractmethod
    async def execute_unit(self, unit: Unit, payload: bytes, config: Mapping[str, Any], label: str) -> bytes:
        """Run `unit.body(payload)` as a unit of the engine, with the given config, and return its output."""

    @abstractmethod
    async def run_outside_container(self, user_prompt: Any, **kwargs: Any) -> AgentRunResult[Any]:
        """What `run()` does when called outside a container."""

    async def publish_live(self, record: str) -> None:
        """Append a record of live events to the log of the container run the caller is in (container or unit).

        Called only when [`live_events`][durable_agents.DurableAgent.live_events] is set.
        """
        raise UnsupportedCapabilityError(f"The {self.engine} engine cannot publish live events.")

    def live_records(self, run_id: str, **options: Any) -> AsyncIterator[str]:
        """The raw records of the container run `run_id`, oldest first: live while it runs, ending when it ends.

        Raises:
            UnknownRunError: No container run of the engine has this id.
        """
        raise UnsupportedCapabilityError(f"The {self.engine} engine cannot watch runs.")

    async def watch(
        self, run_id: str, *, after: int = -1, **options: Any
    ) -> AsyncIterator[tuple[int, AgentStreamEvent]]:
        """The agent events of a run, each with its offset: those published so far, then live ones as they come.

        Ends when the run's container ends (completes, fails or is cancelled). A run publishes its events only if
        its wrapper has `live_events=`; tool calls, tool results and the final result are seen exactly once, even
        when units are retried or the container replays (see the engine's page for what model deltas do).

        ```python
        async for offset, event in durable_agent.watch(run_id, after=last_offset):
            print(offset, event.event_kind)
        ```

        Args:
            run_id: The container run: the `run_id=` of a `run()` on the local engine and Prefect (or a Prefect flow
                run id), the DBOS workflow id (the `run_id=` of `run()`), the Temporal workflow id.
            after: The offset of the last event already seen (`-1`, the default: from the first event).
            **options: What the engine needs to read the run: `client=` on Temporal; on DBOS, in a process that
                has not launched DBOS, `system_database_url=` or `client=` (a `DBOSClient`).

        Raises:
            UnknownRunError: No run of the engine has this id.
        """
        async for item in watch_records(self.live_records(run_id, **options), after):
            yield item

    def replay_probe(self) -> Callable[[], bool] | None:
        """Tells whether the container is replaying recorded history right now, for engines that know it (Temporal).

        Telemetry of replayed work is not emitted again. Where the engine cannot say (`None`, the default), the
        container tells a unit that ran in this process from one whose journaled result came back: there, units run
        in the container's process.
        """
        return None

    def telemetry_clock(self) -> int | None:
        """The time, in ns since the epoch, a replayed container sees again (Temporal's workflow time); `None`: now."""
        return None

    async def recorded_exchanges(self, unit: Unit) -> list[tuple[bytes, bytes | None]] | None:
        """The engine's record of this run's earlier executions of `unit`: `(input, output)` pairs, oldest first.

        Called inside a model unit whose process does not hold the run's history, to rebuild it without a
        resend. `None` (the default) when the engine keeps no record a unit can read; `output` is `None` for an
        execution that has not completed.
        """
        return None

    def event_address(self, key: str) -> dict[str, str]:
        """The address of wait `key` of the run in progress, which its token carries (see `_external.py`).

        Must be deterministic (the same when the container replays) and enough for the engine's
        `deliver_event` to reach the wait from another process. Engines without waits refuse here.
        """
        raise UnsupportedCapabilityError(
            f"The {self.engine} engine cannot wait for external events (`RequestInput`, `wait_for_external_event`). "
            "Fix: use an engine with the 'human_input' capability, or end the run with `DeferredToolRequests`."
        )

    async def ask_in_unit(self, key: str, token: str, ask: Callable[[str], Awaitable[JsonValue]]) -> JsonValue:
        """Call `ask(token)` for wait `key` in a unit the engine records, and return its answer (`None`: none yet).

        A replay returns the recorded answer without calling `ask`. `ask` is a closure of the container, so the
        unit runs in the container's own process (a Temporal local activity, a DBOS step, a Prefect task). The
        default calls it directly (engines without a journal).
        """
        return await ask(token)

    async def wait_for_event(self, key: str, timeout: timedelta | None) -> EventOutcome:
        """Wait durably for the outcome of wait `key`, delivered by `deliver_event`; record it for replays."""
        raise UnsupportedCapabilityError(f"The {self.engine} engine cannot wait for external events.")

    def delegates(self, toolset: AbstractToolset[Any], tool_name: str) -> bool:
        """Whether a function tool runs a durable agent of this engine, and so runs inline in the container.

        Its delegate's run then is a child container of this run (see `_delegation.py`). Decided at the tool's first
        call, when every agent its module defines exists, and kept.
        """
        key = (id(toolset), tool_name)
        known = self._delegating.get(key)
        if known is None:
            tool = toolset.tools.get(tool_name) if isinstance(toolset, FunctionToolset) else None
            known = tool is not None and bool(referenced_agents(tool.function, self.engine))
            self._delegating[key] = known
        return known

    def sub_agents(self) -> list[DurableAgent[Any, Any]]:
        """The durable agents of this engine that this agent's function tools run (see `_delegation.py`).

        Known once every agent the tools' modules define exists; engines that register agents' containers on
        workers (Temporal) call it when a worker starts.
        """
        found: list[DurableAgent[Any, Any]] = []
        for leaf in self._leaves.values():
            if isinstance(leaf.wrapped, FunctionToolset):
                for tool in leaf.wrapped.tools.values():
                    found.extend(a for a in referenced_agents(tool.function, self.engine) if a not in found)
        return found

    async def call_inline_tool(self, tool_name: str, call: Awaitable[Any]) -> Any:
        """Await a call of a tool that opted out of its unit and runs in the container itself.

        Engines whose containers forbid some code (Temporal's workflow sandbox) turn that refusal into a typed
        error here, so it fails the run instead of looping.
        """
        return await call

    # ----------------------------------------------------------------- used by the unit modules

    async def call_unit(
        self, unit: Unit, payload: bytes, *, label: str, config: Mapping[str, Any] | None = None
    ) -> bytes:
        """Check the payload against the engine's limit, then run the unit."""
        check_size(len(payload), self.max_payload_bytes, f"The input of unit {label}")
        with record_unit(self.replay_probe() is None) as executed:
            output = await self.execute_unit(unit, payload, unit.config if config is None else config, label)
        state = CURRENT_RUN.get()
        if executed is not None and state is not None and state.agent_name == self._name:
            if executed.ran:
                state.units_executed += 1
            else:
                state.units_replayed += 1
        return output

    def resolve_unit_model(self, model_id: str | None) -> Model:
        """The real model for a model id (see `_model_ids.py`), on the unit side; built once per process."""
        if model_id is not None and model_id.startswith("o:"):
            model = live_override(model_id)
            if model is None:
                raise ConfigurationError(
                    f"A run of agent {self._name!r} uses a model given to `override(model=...)` in another process "
                    "(or one that no longer exists), so this unit cannot use it. Fix: run the worker in the process "
                    "that enters `override()`, or register the model with `models=` and override with its name."
                )
            return model
        model = self._unit_models.get(model_id)
        if model is None:
            model = infer_model(self._model_spec(model_id))
            self._unit_models[model_id] = model
        return model

    def builds_unit_model(self, model_id: str | None) -> bool:
        """Whether units build the model of `model_id` themselves, from a `'provider:model'` string.

        Durable runs turn off the provider SDK's own retries for such models (the engine retries the unit); a model
        instance the user built keeps its client's configuration.
        """
        if model_id is not None and model_id.startswith("o:"):
            return False
        return isinstance(self._model_spec(model_id), str)

    def context_model(self, model_id: str | None) -> Model:
        """The model a run context shows inside a tool, listing or events unit, built without a provider.

        Those units do not call the model, so a worker that only runs tools needs no model credentials: a model
        string is answered by a stand-in (`NamedModel`).
        """
        built = self._unit_models.get(model_id)
        if built is not None:
            return built
        if model_id is not None and model_id.startswith("o:"):
            live = live_override(model_id)
            if live is not None:
                return live
            spec = self._default_model()
        else:
            spec = self._model_spec(model_id)
        return NamedModel(spec) if isinstance(spec, str) else spec

    def _model_spec(self, model_id: str | None) -> Model | str:
        if model_id is None:
            return self._default_model()
        kind, _, rest = model_id.partition(":")
        if kind == "i":
            return rest
        if kind == "m" and rest in self._models:
            return self._models[rest]
        raise ConfigurationError(
            f"A unit of agent {self._name!r} was asked for model {model_id!r}, which this process does not know. "
            "Fix: build the wrapper with the same `models=` in every process that runs its units."
        )

    def _default_model(self) -> Model | str:
        model = self.wrapped.model
        if model is not None:
            return model
        if self._models:
            return next(iter(self._models.values()))
        raise ConfigurationError(
            f"Agent {self._name!r} has no model. Fix: pass one to the Agent, to `models=`, or to `run(model=...)`."
        )

    def unit_event_handler(self) -> EventStreamHandler[Any] | None:
        """The handler for the unit running now: the run's own one (in-process engines) or the wrapper's."""
        return _RUN_HANDLER.get() or self._handler

    def run_model_id(self, model: Model | str | None) -> str | None:
        """The model id of a run's `model=` argument (`None`: the agent's default), checked before a container starts.

        Raises:
            UnregisteredModelError: `model` is an instance that is neither the agent's nor registered by name.
        """
        return None if model is None else self._model_ref(model, override=False)[0]

    def _resolve_run_model(self, model: Model | str | None) -> tuple[str | None, Model | str]:
        """The run's model id and what the container's stand-in answers from (an instance, or a model string).

        As in pydantic-ai, an active `override(model=...)` wins over the run's `model=`: the wrapper's, then the
        plain agent's, then, where containers cannot see the caller's context, the wrapper's by agent name. Nothing
        here builds a model: a model string is built only in units.
        """
        override = self._model_override.get()
        if override is None:
            override = plain_agent_override(self.wrapped)
            if isinstance(override, DurableModel):
                override = None  # our own stand-in, seen by a run nested in one of this agent's units
        if override is None and not self.containers_see_caller_context:
            override = process_override_of(self._name)
        if override is not None:
            return self._model_ref(override, override=True)
        if model is not None:
            return self._model_ref(model, override=False)
        return None, self._default_model()

    def _model_ref(self, model: Model | str, *, override: bool) -> tuple[str | None, Model | str]:
        if isinstance(model, str):
            if model in self._models:
                return f"m:{model}", self._models[model]
            return f"i:{model}", model
        for key, registered in self._models.items():
            if registered is model:
                return f"m:{key}", model
        if model is self.wrapped.model:
            return None, model
        if override:
            return override_model_id(model), model
        raise UnregisteredModelError(
            f"Model {model!r} was passed to a run of {self._name!r} inside a container, but units resolve models by "
            "name on the worker and this instance is not registered. Fix: pass it as `models={'name': model}` "
            "when building the wrapper and run with `model='name'`, pass a 'provider:model' string, or (in tests) "
            "use `override(model=...)`."
        )

    def bare_model(self, model: Model | str | None) -> Model | str | None:
        """The `model=` to give the plain agent for a run that is not durable (outside a container).

        A `models=` key becomes its model, and an agent without a model of its own gets the first registered one.
        """
        if isinstance(model, str) and model in self._models:
            return self._models[model]
        if model is None and self.wrapped.model is None and self._models:
            return next(iter(self._models.values()))
        return model

    # ----------------------------------------------------------------- running

    @overload
    async def run(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AgentRunResult[OutputDataT]: ...

    @overload
    async def run(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT],
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AgentRunResult[RunOutputDataT]: ...

    async def run(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT] | None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AgentRunResult[Any]:
        """Run the agent durably (inside a container), or as the engine does outside one.

        Takes the same arguments as `Agent.run`. A prompt or message history that cannot cross the unit boundary
        is refused before anything runs ([`InvalidRunInputError`][durable_agents.exceptions.InvalidRunInputError]).
        """
        return await self.dispatch_run(user_prompt, given_arguments(locals()))

    async def dispatch_run(self, user_prompt: Any, kwargs: dict[str, Any]) -> AgentRunResult[Any]:
        """What `run()` does with its arguments (those not at their default).

        Inside a container, a durable run; outside one, the engine's own start. Engines whose runs always start a
        container (DBOS, where a run inside a workflow is a child workflow) override it.
        """
        if self.in_container():
            return await self.run_in_container(user_prompt, **kwargs)
        # Before the engine records a run; the container checks again (with the engine's payload limit), since
        # deployments and recovered runs start there.
        check_run_inputs(self._name, user_prompt, kwargs.get("message_history"), None)
        # The engine may run it in a container of its own (a sub-agent's child container), with a copy of `usage=`.
        return await with_usage_back(kwargs, lambda kw: self.run_outside_container(user_prompt, **kw))

    async def run_in_container(self, user_prompt: Any = None, **kwargs: Any) -> AgentRunResult[Any]:
        """The durable run: the agent graph here, every I/O operation in a unit. Engine adapters call it in a container.

        Raises:
            ContainerUsageError: Called outside a container of this engine.
        """
        if not self.in_container():
            raise ContainerUsageError(
                f"`run_in_container()` of {type(self).__name__} {self._name!r} was called outside a container of the "
                f"{self.engine} engine; it is what the container runs. Fix: call `run()`, which starts a container "
                "(or, inside one, runs durably)."
            )
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        run_handler: EventStreamHandler[Any] | None = kwargs.pop("event_stream_handler", None)
        if run_handler is not None and not self.capabilities.per_run_event_handler:
            raise UnsupportedCapabilityError(
                f"The {self.engine} engine cannot take an event_stream_handler per run: units run on workers that "
                f"cannot receive a function. Fix: pass `event_stream_handler=` when building the {type(self).__name__}."
            )
        handler = run_handler or self._handler
        collect = handler is not None or self.live_events is not None
        async with self._durable(user_prompt, kwargs, handler, run_handler) as run_kwargs:
            return await self.wrapped.run(
                user_prompt, event_stream_handler=collect_events(self) if collect else None, **run_kwargs
            )

    def container_context(self) -> AbstractContextManager[None]:
        """What the engine needs around the container code of a durable run (nothing, unless overridden)."""
        return nullcontext()

    @asynccontextmanager
    async def _durable(
        self,
        user_prompt: Any,
        kwargs: dict[str, Any],
        handler: EventStreamHandler[Any] | None,
        run_handler: EventStreamHandler[Any] | None,
        *,
        streamed: bool = False,
    ) -> AsyncGenerator[dict[str, Any]]:
        """Set up a durable run and give the arguments for the wrapped agent's `run`, `iter` or streaming methods.

        Inside, the wrapped agent runs with the durable model and toolsets; units stream to `handler`. `streamed`:
        container code streams the run (`iter`, `run_stream`, `run_stream_events`).
        """
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        kwargs.pop("infer_name", None)
        run_toolsets = self.check_run_toolsets(kwargs.pop("toolsets", None))
        check_run_inputs(self._name, user_prompt, kwargs.get("message_history"), self.max_history_bytes)
        model_id, model = self._resolve_run_model(kwargs.pop("model", None))
        deps_json = pydantic_core.from_json(self.deps_codec.check(kwargs.get("deps")))
        if isinstance(kwargs.get("metadata"), Mapping):
            # Refused now rather than at the first unit that carries the run context, which may come after a
            # model request has been paid for. Metadata from a function is only known inside the run.
            check_carried("metadata", kwargs["metadata"])
        run_key = self.new_run_key()
        # Ids that are the same when the container is replayed, and short: every message carries them.
        short_id = hashlib.blake2b(run_key.encode(), digest_size=8).hexdigest()
        kwargs.setdefault("run_id", short_id)
        if not any(k in kwargs for k in ("conversation", "conversation_id", "message_history")):
            kwargs["conversation_id"] = short_id
        state = RunState(self._name, run_key, model_id, deps_json, handler, replay_parts=streamed)
        state.trace = RunTrace.start(run_key, self.telemetry_clock())
        HISTORY_CACHE.attach(run_key, state.log)
        run_token = CURRENT_RUN.set(state)
        handler_token = _RUN_HANDLER.set(run_handler)
        error: BaseException | None = None
        try:
            with (
                state.trace.as_current(),
                replay_scope(self.replay_probe()),
                self.container_context(),
                self.wrapped.override(
                    model=DurableModel(model, self), tools=[], toolsets=[*self._toolsets, *run_toolsets]
                ),
                AbstractAgent.parallel_tool_call_execution_mode(self._parallel_mode),
                external_event_scope(RunWaiter(self, state)),
            ):
                yield kwargs
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._end_run_span(state, error)
            _RUN_HANDLER.reset(handler_token)
            CURRENT_RUN.reset(run_token)
            HISTORY_CACHE.forget(run_key)
            # An idle worker thread keeps the context of its last call, and with it this state: let the
            # conversation go now rather than when the thread runs something else.
            state.log = MessageLog()
            state.listings.clear()

    def _end_run_span(self, state: RunState, error: BaseException | None) -> None:
        """Emit the run's span, unless this execution of the container only replayed the run (it was emitted)."""
        if state.trace is None:
            return
        probe = self.replay_probe()
        replayed = probe() if probe is not None else state.units_replayed > 0 and state.units_executed == 0
        if state.units_replayed and not replayed:
            container_log(
                self,
                logging.INFO,
                "Run %s of agent %r resumed: %d units came from the engine's record, %d ran in this process.",
                state.run_key,
                self._name,
                state.units_replayed,
                state.units_executed,
            )
        if not replayed:
            run_span(self, state.run_key, state.trace, error, self.telemetry_clock())

    def check_run_toolsets(self, toolsets: Sequence[AbstractToolset[Any]] | None) -> list[AbstractToolset[Any]]:
        """The run-time `toolsets=` of a durable run, if nothing of theirs would run in a unit.

        A toolset whose every leaf is an `ExternalToolset` executes nothing: its calls end the run as
        `DeferredToolRequests`, so it needs no registered unit.

        Raises:
            ContainerUsageError: A toolset has tools that would run; they would have no registered units.
        """
        toolsets = list(toolsets or [])
        leaves: list[AbstractToolset[Any]] = []
        for toolset in toolsets:
            toolset.apply(leaves.append)
        for leaf in leaves:
            if not isinstance(leaf, ExternalToolset):
                raise ContainerUsageError(
                    f"The run-time toolset {leaf.label} cannot be used in a durable run: its tools would run, and "
                    "would have no registered units. Only toolsets that execute nothing (`ExternalToolset`, whose "
                    "calls end the run as `DeferredToolRequests`) may be passed to `run(toolsets=...)`. Fix: add "
                    "the toolset to the Agent before wrapping it."
                )
        return toolsets

    @overload
    def iter(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[AgentRun[AgentDepsT, OutputDataT]]: ...

    @overload
    def iter(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT],
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[AgentRun[AgentDepsT, RunOutputDataT]]: ...

    def iter(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT] | None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[AgentRun[AgentDepsT, Any]]:
        """Like `Agent.iter`; inside a container, node by node over a durable run.

        Each node's I/O (model requests, tool calls, listings) is a unit, as in `run()`, so the container replays
        the same nodes after a crash. As in `Agent.iter`, no event-stream handler is called; `node.stream()` gives
        each model response's parts whole (see `run_stream_events`).
        """
        return self._durable_call("iter", user_prompt, given_arguments(locals()))

    @overload
    def run_stream(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[StreamedRunResult[AgentDepsT, OutputDataT]]: ...

    @overload
    def run_stream(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT],
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[StreamedRunResult[AgentDepsT, RunOutputDataT]]: ...

    def run_stream(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT] | None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[StreamedRunResult[AgentDepsT, Any]]:
        """Like `Agent.run_stream`; inside a container, a buffered stream over a durable run.

        The model request runs in a unit, so the output does not arrive token by token: the final response
        arrives whole, and `stream_output()` / `stream_text()` give it in one piece. The live tokens are seen
        inside the model unit, by the wrapper's `event_stream_handler`.
        """
        return self._durable_call("run_stream", user_prompt, given_arguments(locals()))

    @overload
    def run_stream_events(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[AgentRunEvents[OutputDataT]]: ...

    @overload
    def run_stream_events(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT],
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[AgentRunEvents[RunOutputDataT]]: ...

    def run_stream_events(
        self,
        user_prompt: str | Sequence[UserContent] | None = None,
        *,
        output_type: OutputSpec[RunOutputDataT] | None = None,
        conversation: Conversation | None = None,
        message_history: Sequence[ModelMessage] | None = None,
        deferred_tool_results: DeferredToolResults | None = None,
        conversation_id: str | None = None,
        run_id: str | None = None,
        model: Model | KnownModelName | str | None = None,
        instructions: AgentInstructions[AgentDepsT] = None,
        deps: AgentDepsT = None,
        model_settings: AgentModelSettings[AgentDepsT] | None = None,
        usage_limits: UsageLimits | None = None,
        cancellation_token: CancellationToken | None = None,
        timeout: float | None = None,
        usage: RunUsage | None = None,
        metadata: AgentMetadata[AgentDepsT] | None = None,
        retries: int | AgentRetries | None = None,
        infer_name: bool = True,
        toolsets: Sequence[AbstractToolset[AgentDepsT]] | None = None,
        capabilities: Sequence[AgentCapability[AgentDepsT]] | None = None,
        workspace: WorkspaceBackend | WorkspaceRef | Literal["new"] | None = None,
        spec: dict[str, Any] | AgentSpec | None = None,
    ) -> AbstractAsyncContextManager[AgentRunEvents[Any]]:
        """Like `Agent.run_stream_events`; inside a container, the buffered events of a durable run.

        The events come from the run's units as each finishes: a model response's parts arrive whole (a part
        start and end, no deltas: the tokens streamed inside the model unit), tool calls and results and the
        final result as in a bare run, then the run's result. A recovered container sees the same events.
        """
        return self._durable_call("run_stream_events", user_prompt, given_arguments(locals()))

    @asynccontextmanager
    async def _durable_call(
        self, method: Literal["iter", "run_stream", "run_stream_events"], user_prompt: Any, kwargs: dict[str, Any]
    ) -> AsyncGenerator[Any]:
        """The wrapped agent's `method` (an async context manager): bare outside a container, durable inside one."""
        call = getattr(self.wrapped, method)
        if not self.in_container():
            async with call(user_prompt, **kwargs) as value:
                yield value
            return
        async with (
            self._durable(user_prompt, kwargs, None, None, streamed=True) as run_kwargs,
            call(user_prompt, **run_kwargs) as value,
        ):
            yield value

    @contextmanager
    def override(self, **kwargs: Any) -> Generator[None]:  # pyright: ignore[reportIncompatibleMethodOverride]
        """Temporarily override agent configuration, as `Agent.override`.

        `model=` (an instance, a `models=` key or a `'provider:model'` string) is used by the model units of durable
        runs that start inside the block, on every engine; for Temporal, by workflows that a worker in this process
        runs while the block is open. An override of the plain agent is honoured too, except inside Temporal
        workflows, which cannot see it. `tools=` and `toolsets=` are refused: a durable agent's tools are fixed
        when it is wrapped.
        """
        if "tools" in kwargs or "toolsets" in kwargs:
            raise ContainerUsageError(
                "A durable agent's tools are fixed when it is wrapped (their units are registered with the engine). "
                "Fix: override the tools of the plain Agent and wrap it again, e.g. in a test fixture."
            )
        model: Model | str | None = kwargs.pop("model", None)
        with ExitStack() as stack:
            if model is not None:
                token = self._model_override.set(model)
                stack.callback(self._model_override.reset, token)
                if not self.in_container():
                    # The plain agent's override serves runs that are not durable; it would build a model string
                    # at once, which a container must not do (durable runs read the override set above).
                    kwargs["model"] = self.bare_model(model)
                    if not self.containers_see_caller_context:
                        stack.enter_context(process_override(self._name, model))
            stack.enter_context(self.wrapped.override(**kwargs))
            yield
