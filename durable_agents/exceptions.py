"""Every error durable_agents raises on purpose.

All of them derive from [`DurableAgentsError`][durable_agents.exceptions.DurableAgentsError], and every one
of them is *non-retryable* on every engine: a unit that raises one reports it as a value instead of
letting the engine retry it, and the engine adapters tell their engine to fail the container
(Temporal workflow, DBOS workflow, Prefect flow) rather than retry it forever.

```text
DurableAgentsError
├── ConfigurationError            the wrapper or a run was set up wrongly; fix the code
│   ├── AgentNameRequiredError    the wrapped agent has no name
│   ├── DuplicateAgentNameError   two wrapped agents share a name in one process/worker
│   ├── ToolsetIdRequiredError    a toolset that needs a unit has no id
│   ├── UnknownConfigKeyError     a unit config dict holds a key the engine does not know
│   ├── InvalidConfigValueError   a unit config value is of the wrong type or out of range
│   ├── UnsupportedCapabilityError  the engine cannot do what was asked of it
│   ├── UnregisteredModelError    a model instance not registered with `models=`, in a container
│   ├── ContainerUsageError       a method that cannot work inside a container was called in one
│   │   └── WaitInUnitError       a tool in its unit began a wait for an external event
│   ├── UnitNotRegisteredError    no worker ran a unit: none that polls its queue registers it
│   ├── EngineNotAvailableError   unknown engine name, or its extra is not installed
│   ├── RegisteredTooLateError    a durable object was created after the engine started (DBOS)
│   ├── SecretNotFoundError       a `Secret` has no value in the process that uses it
│   ├── UnknownRunError           `watch()` was given the id of no run of the engine
│   └── ResumeRefusedError        `resume()` refused a run before anything ran
│       ├── RunNotFoundError      no container run has that id
│       ├── ForeignRunError       the run belongs to another agent
│       ├── RunFinishedError      the run completed or was cancelled
│       ├── RunArgumentsMissingError  arguments that are not data were not passed again
│       └── RunStillActiveError   the run is still alive (or waiting for its engine)
├── SerializationError            a value cannot cross the unit boundary
│   ├── UnserializableDepsError   the run's deps cannot be serialized with the agent's `deps_type`
│   ├── InvalidRunInputError      the run's prompt or message history is not data that can cross it
│   ├── PayloadTooLargeError      a unit input or output is over the engine's payload limit
│   └── ProtocolError             a unit payload of an unknown version, or no frame
├── EventTokenError               an external event token is malformed, or names no waiting run
├── ApprovalMismatchError         an approved tool call is not the call that was approved
├── HistoryUnavailableError       the unit side could not obtain the run's message history
├── ReplayDivergenceError         new workflow code does not replay a recorded run (a deploy check)
└── UnitFailedError               a unit failed for good, with the original error's type and message
    └── EventHandlerError         the event-stream handler raised (never retried)
```
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentNameRequiredError",
    "ApprovalMismatchError",
    "ConfigurationError",
    "ContainerUsageError",
    "DuplicateAgentNameError",
    "DurableAgentsError",
    "EngineNotAvailableError",
    "EventHandlerError",
    "EventTokenError",
    "ForeignRunError",
    "HistoryUnavailableError",
    "InvalidConfigValueError",
    "InvalidRunInputError",
    "PayloadTooLargeError",
    "ProtocolError",
    "RegisteredTooLateError",
    "ReplayDivergenceError",
    "ResumeRefusedError",
    "RunArgumentsMissingError",
    "RunFinishedError",
    "RunNotFoundError",
    "RunStillActiveError",
    "SecretNotFoundError",
    "SerializationError",
    "ToolsetIdRequiredError",
    "UnitFailedError",
    "UnitNotRegisteredError",
    "UnknownConfigKeyError",
    "UnknownRunError",
    "UnregisteredModelError",
    "UnserializableDepsError",
    "UnsupportedCapabilityError",
    "WaitInUnitError",
]


class DurableAgentsError(Exception):
    """Base class of every error durable_agents raises. Never retried by an engine."""

    message: str
    """What went wrong and how to fix it."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        # Picklable with only the message, so DBOS and Prefect can store it.
        return (_rebuild, (type(self), self.message))


def _rebuild(cls: type[DurableAgentsError], message: str) -> DurableAgentsError:
    err = cls.__new__(cls)
    DurableAgentsError.__init__(err, message)
    return err


class ConfigurationError(DurableAgentsError):
    """The wrapper, the engine or a run was set up wrongly. The message says how to fix it."""


class AgentNameRequiredError(ConfigurationError):
    """The wrapped agent has no `name`; unit names are derived from it."""

    def __init__(self) -> None:
        super().__init__(
            "A durable agent needs a stable name, because every unit (activity / step / task) is named after it. "
            "Fix: create the agent with `Agent(..., name='my_agent')`."
        )


class DuplicateAgentNameError(ConfigurationError):
    """Two durable agents with the same name were registered in one process or worker."""

    def __init__(self, name: str, engine: str) -> None:
        super().__init__(
            f"Another {engine} durable agent is already named {name!r}; unit names would collide and recovery "
            "could run the wrong agent's code. Fix: give each agent a unique `name`."
        )


class ToolsetIdRequiredError(ConfigurationError):
    """A toolset whose tools run as units has no `id`."""

    def __init__(self, toolset_label: str, agent_name: str) -> None:
        super().__init__(
            f"Toolset {toolset_label} of agent {agent_name!r} has no `id`. Its units are named after the id, so it "
            "must be stable and unique within the agent. Fix: pass `id='...'` when creating the toolset "
            "(e.g. `FunctionToolset(tools, id='search')`, `MCPServerStdio(..., id='fs')`)."
        )


class UnknownConfigKeyError(ConfigurationError):
    """A unit config holds a key the engine does not know (most often a typo)."""

    def __init__(self, where: str, unknown: list[str], known: list[str]) -> None:
        self.unknown = unknown
        super().__init__(
            f"Unknown key(s) {', '.join(repr(k) for k in unknown)} in {where}. "
            f"Known keys: {', '.join(known)}. Fix the spelling or remove the key."
        )


class InvalidConfigValueError(ConfigurationError):
    """A unit config value does not fit its key's type in the engine's config type (`{"retries": "three"}`)."""

    def __init__(self, where: str, key: str, value: object, problem: str, expected: str) -> None:
        self.key = key
        """The config key whose value is wrong."""
        super().__init__(
            f"Invalid value {value!r} for {key!r} in {where}: {problem}. "
            f"Fix: give {key!r} a value of type {expected} that meets this, or remove the key to get the engine's "
            "default."
        )


class UnsupportedCapabilityError(ConfigurationError):
    """The chosen engine lacks a capability the wrapper or run asked for."""


class UnregisteredModelError(ConfigurationError):
    """A model instance that the wrapper does not know was passed to a run inside a container."""


class ContainerUsageError(ConfigurationError):
    """A method that cannot work inside a container (workflow / flow) was called in one."""


class WaitInUnitError(ContainerUsageError):
    """Code running inside a unit (a tool in its tool unit) called `wait_for_external_event`.

    A unit cannot wait durably: its engine records only its result, and may run it in another process. The
    container waits instead: run the tool inline, or let `RequestInput` ask for the decision.
    """


class UnitNotRegisteredError(ConfigurationError):
    """No worker ran a unit: it waited longer than its schedule-to-start timeout, or the workers lacked it."""

    def __init__(self, agent: str, unit: str, queue: str, waited: object = None) -> None:
        self.agent = agent
        self.unit = unit
        self.queue = queue
        within = f" within its schedule_to_start_timeout ({waited})" if waited is not None else ""
        super().__init__(
            f"No worker ran unit {unit!r} of agent {agent!r}{within}: the workers polling task queue {queue!r} "
            f"do not register it (or were all busy or down). Fix: declare the agent on the workflow class "
            f"(`@uses_agents(temporal_agent)` from durable_agents.temporal), or list it in "
            f"`DurableAgentsPlugin(...)` on the workers of {queue!r}; if the fleet is only slow to pick up work, "
            "raise `schedule_to_start_timeout`."
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message))


class EngineNotAvailableError(ConfigurationError):
    """The engine name is unknown, or its optional dependencies are not installed."""


class RegisteredTooLateError(ConfigurationError):
    """A durable object was created after the engine was started, so it could not be recovered."""


class SecretNotFoundError(ConfigurationError):
    """A [`Secret`][durable_agents.Secret] has no value in the process that uses it."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"Secret {name!r} has no value in this process: it is not an environment variable here and the secret "
            "resolver (if one is set) does not know it. Fix: set the environment variable on every worker that runs "
            "units, or register a resolver with `durable_agents.configure(secret_resolver=...)` in that process."
        )


class UnknownRunError(ConfigurationError):
    """[`watch()`][durable_agents.DurableAgent.watch] was given an id that names no run of the engine."""

    def __init__(self, run_id: str, engine: str, fix: str) -> None:
        self.run_id = run_id
        """The id the caller asked to watch."""
        super().__init__(f"There is no run {run_id!r} to watch on the {engine} engine. Fix: {fix}")
        self._engine = engine
        self._fix = fix

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.run_id, self._engine, self._fix))


class ResumeRefusedError(ConfigurationError):
    """`resume()` refused a container run before anything ran; the subclass says why.

    Nothing was changed on the engine: the run keeps the state it had.
    """

    def __init__(self, run_id: str, why: str, fix: str) -> None:
        self.run_id = run_id
        """The id the caller asked to resume."""
        self.why = why
        """Why the run cannot be resumed."""
        super().__init__(f"Cannot resume run {run_id}: {why}. Fix: {fix}")
        self._fix = fix

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.run_id, self.why, self._fix))


class RunNotFoundError(ResumeRefusedError):
    """No container run has the id given to `resume()` (or it is not an id at all)."""


class ForeignRunError(ResumeRefusedError):
    """The run given to `resume()` is a run of another agent (or not an agent's run at all)."""


class RunFinishedError(ResumeRefusedError):
    """The run given to `resume()` has completed or was cancelled; resuming would run it again."""


class RunArgumentsMissingError(ResumeRefusedError):
    """`resume()` was not given again the run's arguments that the engine could not store.

    They are not data (an `output_type`, a handler); without them the run would go on with different arguments.
    """


class RunStillActiveError(ResumeRefusedError):
    """The run given to `resume()` is still alive in some process, or waiting for its engine to start it."""


class SerializationError(DurableAgentsError):
    """A value cannot cross the unit boundary."""


class UnserializableDepsError(SerializationError):
    """The run's deps cannot be serialized with the agent's `deps_type`."""


class InvalidRunInputError(SerializationError):
    """A run's `user_prompt` or `message_history` cannot cross the unit boundary; refused when `run()` is called.

    A lone surrogate in a string, plain strings where messages belong, a part object pydantic-ai does not know.
    """


class PayloadTooLargeError(SerializationError):
    """A unit's input or output is larger than the engine accepts."""

    def __init__(self, what: str, size: int, limit: int, *, fix: str | None = None, at_least: bool = False) -> None:
        self.what = what
        self.size = size
        self.limit = limit
        self.fix = fix
        self.at_least = at_least
        super().__init__(
            f"{what} is {'at least ' if at_least else ''}{size:,} bytes, over the engine's payload limit of "
            f"{limit:,} bytes. Retrying cannot help. "
            f"Fix: {fix or 'return less data (a summary, or a reference to where the data is stored).'}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_payload_too_large, (self.what, self.size, self.limit, self.fix, self.at_least))


class ProtocolError(SerializationError):
    """A unit payload is of a protocol version this library does not read, or is not a unit frame.

    Raised instead of retrying: a worker on older code must not loop on a payload that a newer one wrote.
    """


class EventTokenError(DurableAgentsError):
    """An external event token is not one of ours, is damaged, or names a run or wait that does not exist.

    Raised by `resolve_external_event` / `fail_external_event` in the process that answers, never inside a run.
    """


class ApprovalMismatchError(DurableAgentsError):
    """An approved tool call's tool or arguments differ from the call its approval was bound to.

    See [`durable_agents.approve`][durable_agents.approve]: the call is refused and the run fails.
    """


class HistoryUnavailableError(DurableAgentsError):
    """A model unit could not obtain the run's message history, even after the container resent it.

    Happens only when the resent history had to be split over several units and they ran on different workers
    that cannot read the engine's record of the run.
    """


class ReplayDivergenceError(DurableAgentsError):
    """New workflow code does not replay the history of a recorded run (`durable_agents.temporal.check_replay`).

    Deploying that code would leave the run stuck at the divergence.
    """

    report: Any
    """The `ReplayReport`: which histories replayed, and the failure."""

    def __init__(self, message: str, report: Any) -> None:
        self.report = report
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (ReplayDivergenceError, (self.message, self.report))


class UnitFailedError(DurableAgentsError):
    """A unit failed with an error that must not be retried; carries the original type and message."""

    def __init__(self, unit: str, error_type: str, error_message: str) -> None:
        self.unit = unit
        self.error_type = error_type
        self.error_message = error_message
        super().__init__(f"Unit {unit} failed with {error_type}: {error_message}")

    def __reduce__(self) -> tuple[object, ...]:
        return (UnitFailedError, (self.unit, self.error_type, self.error_message))


class EventHandlerError(UnitFailedError):
    """The event-stream handler raised inside a unit; the run fails instead of retrying the unit.

    In a model unit a retry would send (and pay for) the model request again only to feed the handler, so a
    handler's error is final on every engine; the same holds for the units that deliver agent-level events.
    """

    def __init__(self, agent: str, unit: str, error: BaseException) -> None:
        self.unit = unit
        self.error_type = type(error).__name__
        self.error_message = str(error)
        DurableAgentsError.__init__(
            self,
            f"The event_stream_handler of agent {agent!r} raised {self.error_type}: {self.error_message} (in unit "
            f"{unit}). Handler errors are not retried (in a model unit, a retry would pay for the model request "
            "again). Fix: catch, inside the handler, the errors it can recover from (a lost client connection, say).",
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message))


def _payload_too_large(what: str, size: int, limit: int, fix: str | None, at_least: bool) -> PayloadTooLargeError:
    return PayloadTooLargeError(what, size, limit, fix=fix, at_least=at_least)
