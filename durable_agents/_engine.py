"""The engine-neutral surface: engine capabilities, the engine registry and `durable()`.

An *engine* is a factory that wraps a pydantic-ai agent into a durable agent, plus a declaration
of what it can do ([`EngineCapabilities`][durable_agents.EngineCapabilities]). The four built-in
engines are registered lazily by import path, so importing `durable_agents` never imports
Temporal, DBOS or Prefect.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, overload

from pydantic_ai.agent import AbstractAgent
from pydantic_ai.output import OutputDataT
from pydantic_ai.tools import AgentDepsT

from ._external import set_event_options
from ._secrets import SecretResolver, set_resolver
from .exceptions import ConfigurationError, EngineNotAvailableError, UnsupportedCapabilityError

if TYPE_CHECKING:  # only for `durable()`'s types: importing durable_agents imports no engine
    from ._agent import DurableAgent
    from .dbos import DBOSAgent
    from .local import LocalAgent
    from .prefect import PrefectAgent
    from .temporal import TemporalAgent

__all__ = [
    "EngineCapabilities",
    "EngineInfo",
    "available_engines",
    "configure",
    "durable",
    "get_engine",
    "register_engine",
]


@dataclass(frozen=True)
class EngineCapabilities:
    """What an engine can do. Ask for one with `require=` and a wrapper fails at construction if it can't."""

    durable: bool = False
    """A run survives the crash of the process running it."""
    replay: bool = False
    """The container is re-executed after a crash and reads recorded unit results back."""
    checkpointing: bool = False
    """Every completed unit is recorded, so it is never executed twice after recovery."""
    parallel_tools: bool = False
    """Tool calls of one model response run concurrently, in a deterministic order."""
    human_input: bool = False
    """A run can wait for input from outside (`RequestInput`, `wait_for_external_event`): durably, on durable
    engines (signals, messages, pauses); in process, on the local engine."""
    scheduling: bool = False
    """Runs can be started on a schedule (cron, interval) by the engine."""
    distributed: bool = False
    """Units and containers can run on other machines than the caller's."""
    live_streaming: bool = False
    """A run's events, model tokens included (batched), can be watched from outside its container as they arrive
    (`live_events=` on the wrapper, then [`watch()`][durable_agents.DurableAgent.watch])."""
    per_run_event_handler: bool = False
    """An `event_stream_handler` can be passed to `run()` (not only at construction)."""

    def check(self, engine: str, required: Iterable[str]) -> None:
        """Raise `UnsupportedCapabilityError` for the first required capability the engine lacks."""
        known = {f.name for f in fields(self)}
        for name in required:
            if name not in known:
                raise UnsupportedCapabilityError(
                    f"Unknown capability {name!r}; known capabilities: {', '.join(sorted(known))}."
                )
            if not getattr(self, name):
                able = [e.name for e in available_engines() if getattr(e.capabilities, name)]
                raise UnsupportedCapabilityError(
                    f"The {engine} engine does not support {name!r}. Engines that do: {', '.join(able) or 'none'}."
                )


Factory: TypeAlias = "Callable[..., DurableAgent[Any, Any]]"


@dataclass(frozen=True)
class EngineInfo:
    """A registered engine."""

    name: str
    """What `durable(agent, engine=...)` calls it."""
    capabilities: EngineCapabilities
    """What it can do (known even when the engine is not installed)."""
    installed: bool
    """Whether its optional dependencies are importable."""
    install_hint: str
    """How to install it, e.g. `pip install 'durable-pydantic-agents[dbos]'`."""
    factory: Factory | None = None
    """The wrapper class (or any callable `factory(agent, **options)`); `None` until first use for built-ins."""
    factory_path: str | None = None
    """`module:attribute` of a lazily imported factory."""
    requires_module: str | None = None
    """The module whose presence means the extra is installed."""

    def load(self) -> Factory:
        """The factory, importing it if needed."""
        if self.factory is not None:
            return self.factory
        if not self.installed or self.factory_path is None:
            raise EngineNotAvailableError(f"The {self.name} engine is not installed. Fix: {self.install_hint}")
        module, _, attr = self.factory_path.partition(":")
        return getattr(importlib.import_module(module), attr)


LOCAL_CAPABILITIES = EngineCapabilities(parallel_tools=True, human_input=True, per_run_event_handler=True)
DBOS_CAPABILITIES = EngineCapabilities(
    durable=True,
    replay=True,
    checkpointing=True,
    parallel_tools=True,
    human_input=True,
    scheduling=True,
    distributed=True,
    live_streaming=True,
    per_run_event_handler=True,
)
TEMPORAL_CAPABILITIES = EngineCapabilities(
    durable=True,
    replay=True,
    checkpointing=True,
    parallel_tools=True,
    human_input=True,
    scheduling=True,
    distributed=True,
    live_streaming=True,
)
PREFECT_CAPABILITIES = EngineCapabilities(
    durable=True,
    checkpointing=True,
    parallel_tools=True,
    human_input=True,
    scheduling=True,
    distributed=True,
    live_streaming=True,
    per_run_event_handler=True,
)

_BUILTINS: dict[str, tuple[str, str | None, str, EngineCapabilities]] = {
    "local": ("durable_agents.local:LocalAgent", None, "included with durable-pydantic-agents", LOCAL_CAPABILITIES),
    "dbos": ("durable_agents.dbos:DBOSAgent", "dbos", "pip install 'durable-pydantic-agents[dbos]'", DBOS_CAPABILITIES),
    "temporal": (
        "durable_agents.temporal:TemporalAgent",
        "temporalio",
        "pip install 'durable-pydantic-agents[temporal]'",
        TEMPORAL_CAPABILITIES,
    ),
    "prefect": (
        "durable_agents.prefect:PrefectAgent",
        "prefect",
        "pip install 'durable-pydantic-agents[prefect]'",
        PREFECT_CAPABILITIES,
    ),
}

_registry: dict[str, EngineInfo] = {}
_defaults: dict[str, Any] = {"engine": None, "engine_options": {}}


def _builtin(name: str) -> EngineInfo:
    path, module, hint, capabilities = _BUILTINS[name]
    installed = module is None or importlib.util.find_spec(module) is not None
    return EngineInfo(name, capabilities, installed, hint, factory_path=path, requires_module=module)


def register_engine(
    name: str, factory: Factory, *, capabilities: EngineCapabilities, install_hint: str = "", replace: bool = False
) -> EngineInfo:
    """Register a third-party engine so `durable(agent, engine=name)` uses it.

    Args:
        name: The engine's name.
        factory: Called as `factory(agent, **engine_options)`; returns the durable agent.
        capabilities: What the engine can do.
        install_hint: How to install it, shown in errors.
        replace: Allow replacing an engine of the same name (built-ins included).
    """
    if not replace and (name in _registry or name in _BUILTINS):
        raise EngineNotAvailableError(
            f"An engine named {name!r} is already registered; pass replace=True to replace it."
        )
    info = EngineInfo(name, capabilities, True, install_hint, factory=factory)
    _registry[name] = info
    return info


def get_engine(name: str) -> EngineInfo:
    """The registered engine called `name`."""
    if name in _registry:
        return _registry[name]
    if name in _BUILTINS:
        return _builtin(name)
    raise EngineNotAvailableError(
        f"Unknown engine {name!r}. Registered engines: {', '.join(e.name for e in available_engines())}. "
        "Third-party engines are added with `durable_agents.register_engine(name, factory, capabilities=...)`."
    )


def available_engines() -> list[EngineInfo]:
    """Every registered engine, installed or not (those not installed say how to install them)."""
    names = list(_BUILTINS) + [n for n in _registry if n not in _BUILTINS]
    return [get_engine(n) for n in names]


def configure(
    *,
    engine: str | None = None,
    engine_options: Mapping[str, Any] | None = None,
    secret_resolver: SecretResolver | None = None,
    event_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Set process-wide defaults: the engine `durable()` uses when none is named, and where secrets come from.

    Args:
        engine: The default engine. It is set (with `engine_options`) by every call that passes it or
            `engine_options`; `configure()` with no arguments clears every default.
        engine_options: Options passed to the default engine's wrapper.
        secret_resolver: Looks up the value of a [`Secret`][durable_agents.Secret] by name in this process
            (returning `None` for a name it does not know); kept until `configure()` clears it. Without one,
            secrets are the process's environment variables. Register it in every process that runs units.
        event_options: How [`resolve_external_event`][durable_agents.resolve_external_event] and
            [`fail_external_event`][durable_agents.fail_external_event] reach each engine when a call passes no
            options of its own, by engine name: e.g. `{"temporal": {"client": client}, "dbos":
            {"system_database_url": url}}`. Options a call passes win. Kept until `configure()` clears it.
    """
    if event_options is not None:
        set_event_options(event_options)
    if secret_resolver is not None:
        set_resolver(secret_resolver)
    if engine is None and engine_options is None:
        if secret_resolver is not None or event_options is not None:
            return
        set_resolver(None)  # `configure()`: every default back
        set_event_options({})
    if engine is not None:
        get_engine(engine)
    _defaults["engine"] = engine
    _defaults["engine_options"] = dict(engine_options or {})


@overload
def durable(
    agent: AbstractAgent[AgentDepsT, OutputDataT],
    engine: Literal["dbos"],
    *,
    require: Iterable[str] = (),
    **engine_options: Any,
) -> DBOSAgent[AgentDepsT, OutputDataT]: ...
@overload
def durable(
    agent: AbstractAgent[AgentDepsT, OutputDataT],
    engine: Literal["temporal"],
    *,
    require: Iterable[str] = (),
    **engine_options: Any,
) -> TemporalAgent[AgentDepsT, OutputDataT]: ...
@overload
def durable(
    agent: AbstractAgent[AgentDepsT, OutputDataT],
    engine: Literal["prefect"],
    *,
    require: Iterable[str] = (),
    **engine_options: Any,
) -> PrefectAgent[AgentDepsT, OutputDataT]: ...
@overload
def durable(
    agent: AbstractAgent[AgentDepsT, OutputDataT],
    engine: Literal["local"],
    *,
    require: Iterable[str] = (),
    **engine_options: Any,
) -> LocalAgent[AgentDepsT, OutputDataT]: ...
@overload
def durable(
    agent: AbstractAgent[AgentDepsT, OutputDataT],
    engine: str | None = None,
    *,
    require: Iterable[str] = (),
    **engine_options: Any,
) -> DurableAgent[AgentDepsT, OutputDataT]: ...
def durable(
    agent: AbstractAgent[Any, Any], engine: str | None = None, *, require: Iterable[str] = (), **engine_options: Any
) -> DurableAgent[Any, Any]:
    """Wrap `agent` for durable execution on `engine` and return the engine's wrapper.

    Typed per engine: `durable(agent, "dbos")` of an `Agent[MyDeps, MyOut]` is a `DBOSAgent[MyDeps, MyOut]`; an
    engine named by a variable or the configured default gives a `DurableAgent[MyDeps, MyOut]`.

    Args:
        agent: A pydantic-ai agent with a `name`.
        engine: `'dbos'`, `'temporal'`, `'prefect'`, `'local'` or a registered engine; defaults to the
            one set with [`configure`][durable_agents.configure].
        require: Capabilities the engine must have (see [`EngineCapabilities`][durable_agents.EngineCapabilities]).
        **engine_options: Passed to the engine's wrapper (e.g. `model_step_config=...` for DBOS).
    """
    options: dict[str, Any] = {}
    if engine is None:
        engine = _defaults["engine"]
        options.update(_defaults["engine_options"])
        if engine is None:
            raise EngineNotAvailableError(
                "No engine named and no default configured. Fix: `durable(agent, engine='dbos')` or "
                "`durable_agents.configure(engine='dbos')`."
            )
    options.update(engine_options)
    info = get_engine(engine)
    required = list(require)
    info.capabilities.check(engine, required)
    from ._agent import DurableAgent  # here: `_agent` imports this module

    wrapper = info.load()(agent, **options)
    if not isinstance(wrapper, DurableAgent):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ConfigurationError(
            f"The factory of engine {engine!r} returned a {type(wrapper).__name__!r} object, not a durable agent. "
            "Fix: make it return an instance of a `durable_agents.DurableAgent` subclass (e.g. of `LocalAgent`)."
        )
    return wrapper
