"""`LocalAgent`: units are awaited in-process, the container is the `run()` call itself."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, TypedDict

from pydantic import Field
from pydantic_ai.agent import AbstractAgent, EventStreamHandler
from pydantic_ai.models import Model
from pydantic_ai.output import OutputDataT
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT

from .._agent import DurableAgent, ParallelExecutionMode
from .._config import UnitConfigs, config_keys
from .._engine import LOCAL_CAPABILITIES
from .._external import EventOutcome, timed_out
from .._live import LiveEvents
from .._policy import pause_before_retry
from .._run import CURRENT_RUN
from .._telemetry import unit_attempt
from .._units import Unit
from ..exceptions import EventTokenError, UnknownRunError
from ._inbox import inbox_address, is_this_process, send_to_inbox

__all__ = ["LocalAgent", "LocalUnitConfig", "deliver_event"]

_IN_CONTAINER: ContextVar[bool] = ContextVar("durable_agents_local_container", default=False)


@dataclass
class _LiveLog:
    """The live events records of one local run, and the watchers waiting for more."""

    records: list[str] = field(default_factory=list[str])
    ended: bool = False
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(
        default_factory=list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]
    )

    def changed(self) -> None:
        for loop, event in self.waiters:
            loop.call_soon_threadsafe(event.set)


# Live logs by run id, the oldest dropped first once there are more than `_LIVE_LOGS_KEPT`.
_LIVE_LOGS: dict[str, _LiveLog] = {}
_LIVE_LOGS_KEPT = 1024
_LIVE_LOG: ContextVar[_LiveLog | None] = ContextVar("durable_agents_local_live_log", default=None)


class _Wait:
    """One wait of a local run: its outcome once delivered, and the waiting task's future."""

    outcome: EventOutcome | None = None
    future: asyncio.Future[EventOutcome] | None = None


# Waits of this process's local runs, by (run key, wait key). Entries stay after the wait ends, so a second
# answer is recognised as one (and ignored) rather than reported as a wrong token.
_WAITS: dict[tuple[str, str], _Wait] = {}
_WAITS_LOCK = threading.Lock()


async def deliver_event(address: Mapping[str, str], outcome: EventOutcome, options: Mapping[str, Any]) -> bool:
    """Deliver an outcome to a wait of a local run (see `durable_agents.resolve_external_event`).

    A wait of this process gets it directly; a wait of another process, through that process's inbox.
    """
    if not is_this_process(address):
        return await send_to_inbox(address, outcome)
    return _deliver_here(address.get("run", ""), address.get("key", ""), outcome)


def _deliver_here(run_key: str, key: str, outcome: EventOutcome) -> bool:
    """Hand an outcome to the wait (run key, wait key) of this process; `False` if it already had one."""
    with _WAITS_LOCK:
        wait = _WAITS.get((run_key, key))
        if wait is None:
            raise EventTokenError(
                "No local run of the process this token names has handed out this token. Fix: pass the token "
                "the run handed to `ask`, unchanged, while the run waits."
            )
        if wait.outcome is not None:
            return False
        wait.outcome = outcome
        future = wait.future
    if future is not None:
        with contextlib.suppress(RuntimeError):  # a closed event loop: nobody waits any more
            future.get_loop().call_soon_threadsafe(_settle, future, outcome)
    return True


def _settle(future: asyncio.Future[EventOutcome], outcome: EventOutcome) -> None:
    if not future.done():
        future.set_result(outcome)


class LocalUnitConfig(TypedDict, total=False):
    """Config of a local unit."""

    timeout_seconds: Annotated[float, Field(gt=0)]
    """Cancel the unit if it runs longer than this."""
    max_attempts: Annotated[int, Field(ge=1)]
    """How many times to try the unit when it raises a retryable error (default 1: no retry)."""


class LocalAgent(DurableAgent[AgentDepsT, OutputDataT]):
    """A pydantic-ai agent run through the unit contract in-process, without durability."""

    engine = "local"
    capabilities = LOCAL_CAPABILITIES

    def __init__(
        self,
        wrapped: AbstractAgent[AgentDepsT, OutputDataT],
        *,
        unit_config: LocalUnitConfig | None = None,
        model_unit_config: LocalUnitConfig | None = None,
        toolset_unit_configs: Mapping[str, LocalUnitConfig] | None = None,
        tool_unit_configs: Mapping[str, LocalUnitConfig | None] | None = None,
        event_stream_handler_unit_config: LocalUnitConfig | None = None,
        models: Mapping[str, Model | str] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        parallel_execution_mode: ParallelExecutionMode = "parallel_ordered_events",
        max_payload_bytes: int | None = None,
        require: Iterable[str] = (),
        live_events: LiveEvents | bool | None = None,
    ) -> None:
        """Wrap `wrapped` to run through units in-process.

        Args:
            wrapped: The agent; it must have a `name`.
            unit_config: Config of every unit.
            model_unit_config: Config of model request units, over `unit_config`.
            toolset_unit_configs: Config per toolset id, over `unit_config`.
            tool_unit_configs: Config per tool name, over its toolset's; `None` runs the tool inline.
            event_stream_handler_unit_config: Config of events units, over `unit_config`.
            models: Models a run may select by name.
            event_stream_handler: Handler for model stream and agent events.
            parallel_execution_mode: How the tool calls of one model response run.
            max_payload_bytes: Reject unit inputs and outputs larger than this, like a real engine would.
            require: Capabilities the engine must have.
            live_events: Publish each run's events for [`watch()`][durable_agents.DurableAgent.watch], by the
                run's `run_id=` (kept in this process for the last 1024 runs).
        """
        self.max_payload_bytes = max_payload_bytes
        configs = UnitConfigs(
            known_keys=config_keys(LocalUnitConfig),
            config_name="LocalUnitConfig",
            config_type=LocalUnitConfig,
            base=unit_config or {},
            model=model_unit_config or {},
            events=event_stream_handler_unit_config or {},
            toolsets=toolset_unit_configs or {},
            tools=tool_unit_configs or {},
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

    def in_container(self) -> bool:
        return _IN_CONTAINER.get()

    def new_run_key(self) -> str:
        return f"{self.name}:{uuid.uuid4().hex}"

    async def execute_unit(self, unit: Unit, payload: bytes, config: Mapping[str, Any], label: str) -> bytes:
        attempts = max(1, int(config.get("max_attempts", 1)))
        timeout = config.get("timeout_seconds")
        for attempt in range(1, attempts + 1):
            try:
                with unit_attempt(attempt):
                    return await asyncio.wait_for(unit.body(payload), timeout)
            except Exception as exc:
                if attempt == attempts:
                    raise
                await pause_before_retry(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def event_address(self, key: str) -> dict[str, str]:
        state = CURRENT_RUN.get()
        if state is None:  # pragma: no cover - the waiter is installed with the run
            raise EventTokenError("A local wait was started outside a run.")
        with _WAITS_LOCK:
            _WAITS.setdefault((state.run_key, key), _Wait())
        return {"run": state.run_key, "key": key, **inbox_address(_deliver_here)}

    async def wait_for_event(self, key: str, timeout: timedelta | None) -> EventOutcome:
        state = CURRENT_RUN.get()
        assert state is not None
        with _WAITS_LOCK:
            wait = _WAITS.setdefault((state.run_key, key), _Wait())
            if wait.outcome is not None:
                return wait.outcome
            future: asyncio.Future[EventOutcome] = asyncio.get_running_loop().create_future()
            wait.future = future
        try:
            return await asyncio.wait_for(future, None if timeout is None else timeout.total_seconds())
        except TimeoutError:
            with _WAITS_LOCK:
                if wait.outcome is None:
                    wait.outcome = timed_out(timeout)
                return wait.outcome

    async def run_outside_container(self, user_prompt: Any, **kwargs: Any) -> AgentRunResult[Any]:
        log: _LiveLog | None = None
        if self.live_events is not None:
            log = _LiveLog()
            run_id = str(kwargs.setdefault("run_id", uuid.uuid4().hex))
            _LIVE_LOGS.pop(run_id, None)
            _LIVE_LOGS[run_id] = log
            while len(_LIVE_LOGS) > _LIVE_LOGS_KEPT:
                del _LIVE_LOGS[next(iter(_LIVE_LOGS))]
        token = _IN_CONTAINER.set(True)
        log_token = _LIVE_LOG.set(log)
        try:
            return await self.run_in_container(user_prompt, **kwargs)
        finally:
            _LIVE_LOG.reset(log_token)
            _IN_CONTAINER.reset(token)
            if log is not None:
                log.ended = True
                log.changed()

    async def publish_live(self, record: str) -> None:
        log = _LIVE_LOG.get()
        if log is not None:
            log.records.append(record)
            log.changed()

    async def live_records(self, run_id: str, **options: Any) -> AsyncIterator[str]:  # pyright: ignore[reportIncompatibleMethodOverride]
        """The records of the local run `run_id` of this process."""
        log = _LIVE_LOGS.get(run_id)
        if log is None:
            raise UnknownRunError(
                run_id,
                self.engine,
                "watch a run of this process that has started, by its `run_id=`, with `live_events=` on the wrapper",
            )
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        log.waiters.append(waiter)
        try:
            sent = 0
            while True:
                event.clear()
                while sent < len(log.records):
                    yield log.records[sent]
                    sent += 1
                if log.ended:
                    return
                await event.wait()
        finally:
            log.waiters.remove(waiter)
