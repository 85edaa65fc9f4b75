"""Telemetry of durable runs: OpenTelemetry spans emitted once, token usage, and the package's loggers.

Spans go through `opentelemetry-api`, which pydantic-ai already depends on: nothing is added, and without a
tracer provider (an OpenTelemetry SDK, or Logfire) every call here is a no-op.

- **Run span** `durable_agents run <agent>`: one per agent run. Its trace id and span id are derived from the
  run key (the trace id is the caller's when the run started under a span), so every process that takes part in
  the run, before and after a crash, knows them without asking anyone. It is emitted when the run ends, with the
  run's start time, and not when a Temporal workflow replays that end.
- **Unit spans** `durable_agents unit <unit name>`: one per unit *execution*, started inside the unit body, which
  the engine only runs when the unit is not journaled. Each is a child of the run span, whose context crosses into
  the unit in the unit input's `trace` field (a W3C `traceparent`), so it is parented in any process.
  A model unit's span carries the request's token usage (`gen_ai.usage.input_tokens`, `..output_tokens`).
- **pydantic-ai's own spans** (`instrument=True`) in the container are kept from being emitted again for replayed
  work with pydantic-ai's `replay_scope` (see [`replay_scope`][durable_agents._telemetry.replay_scope]).

The loggers are `durable_agents` and one child per engine (`durable_agents.temporal`, ...); the package adds a
`NullHandler`, so nothing is printed unless the application configures logging. Payloads are never logged.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pydantic_core
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from ._observers import UnitEvent, notify

if TYPE_CHECKING:
    from ._agent import DurableAgent
    from ._units import UnitBody

__all__ = [
    "RunTrace",
    "annotate_unit",
    "attach_traceparent",
    "begin_unit",
    "container_log",
    "current_traceparent",
    "engine_logger",
    "record_unit",
    "replay_scope",
    "run_span",
    "traced_body",
    "unit_attempt",
]

TRACER_NAME = "durable_agents"
"""The instrumentation scope of every span this library emits."""

logger = logging.getLogger("durable_agents")


def engine_logger(engine: str) -> logging.Logger:
    """The logger of an engine adapter: `durable_agents.<engine>`."""
    return logger.getChild(engine)


def container_log(owner: DurableAgent[Any, Any], level: int, message: str, *args: object) -> None:
    """Log from container code under the engine's logger, but not while Temporal replays (it was logged then)."""
    probe = owner.replay_probe()
    if probe is not None and probe():
        return
    engine_logger(owner.engine).log(level, message, *args)


def _tracer() -> trace.Tracer:
    return trace.get_tracer_provider().get_tracer(TRACER_NAME)


# ----------------------------------------------------------------------------------------------- trace context


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, if there is a valid one (to carry a caller's context along)."""
    ctx = trace.get_current_span().get_span_context()
    return _traceparent(ctx.trace_id, ctx.span_id, ctx.trace_flags) if ctx.is_valid else None


def _traceparent(trace_id: int, span_id: int, flags: int = TraceFlags.SAMPLED) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & 0xFF:02x}"


def _parse_traceparent(value: str | None) -> SpanContext | None:
    if not value:
        return None
    parts = value.split("-")
    if len(parts) != 4:
        return None
    try:
        ctx = SpanContext(
            int(parts[1], 16), int(parts[2], 16), is_remote=True, trace_flags=TraceFlags(int(parts[3], 16))
        )
    except ValueError:
        return None
    return ctx if ctx.is_valid else None


@contextmanager
def attach_traceparent(value: str | None) -> Generator[None]:
    """Make the span of a carried `traceparent` the current parent inside the block (nothing for `None`).

    Containers started from a caller in another process (a DBOS workflow, a Prefect flow run, a Temporal workflow)
    attach the caller's context this way, the same one after every recovery, so the run joins the caller's trace.
    """
    parent = _parse_traceparent(value)
    if parent is None:
        yield
        return
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    try:
        yield
    finally:
        otel_context.detach(token)


@dataclass
class RunTrace:
    """The trace context of one agent run: the same in every process and every replay of the run."""

    trace_id: int
    span_id: int
    parent: SpanContext | None
    """The caller's span, if the run started under one."""
    start_ns: int
    traceparent: str = field(init=False)
    """What unit inputs carry, so unit spans are children of the run span."""

    def __post_init__(self) -> None:
        self.traceparent = _traceparent(self.trace_id, self.span_id)

    def as_current(self) -> AbstractContextManager[None]:
        """The run span as the parent of what the container does (pydantic-ai's spans), in every process alike."""
        return attach_traceparent(self.traceparent)

    @classmethod
    def start(cls, run_key: str, start_ns: int | None) -> RunTrace:
        """The trace of the run `run_key`, started now (or at `start_ns`) under the current span, if any."""
        digest = hashlib.blake2b(run_key.encode(), digest_size=24, person=b"durable-run").digest()
        caller = trace.get_current_span().get_span_context()
        parent = caller if caller.is_valid else None
        trace_id = parent.trace_id if parent is not None else int.from_bytes(digest[:16]) or 1
        span_id = int.from_bytes(digest[16:]) or 1
        return cls(trace_id, span_id, parent, time.time_ns() if start_ns is None else start_ns)


class _FixedIds:
    """An id generator giving the run span the ids every process of the run derived (duck-typed SDK `IdGenerator`)."""

    def __init__(self, trace_id: int, span_id: int) -> None:
        self._trace_id, self._span_id = trace_id, span_id

    def generate_span_id(self) -> int:
        return self._span_id

    def generate_trace_id(self) -> int:
        return self._trace_id

    def is_trace_id_random(self) -> bool:
        return False


def _fixed_id_tracer(run: RunTrace) -> trace.Tracer:
    """A tracer whose next span gets the run's ids, if the provider is OpenTelemetry's SDK (also behind Logfire).

    The API has no way to choose a span id, so a copy of the SDK tracer gets its own id generator; another provider
    gets its own tracer, whose run span then has other ids than the ones unit spans point to.
    """
    tracer: Any = _tracer()
    inner: Any = getattr(tracer, "tracer", tracer)  # Logfire's proxy tracer wraps the SDK's
    if not hasattr(inner, "id_generator"):
        return tracer
    fixed = copy.copy(inner)
    fixed.id_generator = _FixedIds(run.trace_id, run.span_id)
    return fixed


def run_span(
    owner: DurableAgent[Any, Any], run_key: str, run: RunTrace, error: BaseException | None, end_ns: int | None
) -> None:
    """Emit the span of a finished run (called once per run, when the run ends and is not replayed)."""
    attributes: dict[str, Any] = {
        "durable_agents.engine": owner.engine,
        "durable_agents.agent": owner.name,
        "durable_agents.run_key": run_key,
        "gen_ai.agent.name": owner.name,
    }
    parent = (
        trace.set_span_in_context(NonRecordingSpan(run.parent)) if run.parent is not None else otel_context.Context()
    )
    span = _fixed_id_tracer(run).start_span(
        f"durable_agents run {owner.name}", parent, SpanKind.INTERNAL, attributes, start_time=run.start_ns
    )
    if error is not None:
        span.set_attribute("error.type", type(error).__name__)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end(end_ns if end_ns is not None else time.time_ns())


# ----------------------------------------------------------------------------------------------- unit spans


UNIT_ATTEMPT: ContextVar[int] = ContextVar("durable_agents_unit_attempt", default=1)
"""The attempt of the unit execution in progress (1: first), set by engine adapters around a unit's body."""


@contextmanager
def unit_attempt(attempt: int) -> Generator[None]:
    """Tell the unit body which attempt of its unit this is (engine adapters wrap the body's call in it)."""
    token = UNIT_ATTEMPT.set(attempt)
    try:
        yield
    finally:
        UNIT_ATTEMPT.reset(token)


@dataclass
class _UnitSlot:
    """One unit execution in progress: its span, once the body has decoded its input and called `begin_unit`."""

    owner: DurableAgent[Any, Any]
    unit_name: str
    span: Span | None = None
    label: str = ""
    token: object | None = None


_SLOT: ContextVar[_UnitSlot | None] = ContextVar("durable_agents_unit_slot", default=None)


@dataclass
class _Executed:
    """Whether the unit that the container just called ran its body in this process (was not read from a journal)."""

    ran: bool = False


_EXECUTED: ContextVar[_Executed | None] = ContextVar("durable_agents_unit_executed", default=None)


def traced_body(owner: DurableAgent[Any, Any], unit_name: str, body: UnitBody) -> UnitBody:
    """Wrap a unit's body so that each execution is one span, ended with the outcome, and retries are logged."""

    async def run(payload: bytes) -> bytes:
        executed = _EXECUTED.get()
        if executed is not None:
            executed.ran = True
        slot = _UnitSlot(owner, unit_name)
        token = _SLOT.set(slot)
        try:
            output = await body(payload)
        except BaseException as exc:
            _finish(slot, len(payload), None, exc)
            raise
        else:
            _finish(slot, len(payload), output, None)
            return output
        finally:
            _SLOT.reset(token)

    return run


def begin_unit(event: UnitEvent, traceparent: str | None) -> None:
    """Called by a unit body once it knows its label: start the unit's span, then tell the observers.

    The span is a child of the run span whose context the input carried (`traceparent`), and the current span for
    what the body does (a model client's own spans nest under it).
    """
    slot = _SLOT.get()
    if slot is not None and slot.span is None:
        parent = _parse_traceparent(traceparent)
        parent_ctx = trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None
        attributes: dict[str, Any] = {
            "durable_agents.engine": slot.owner.engine,
            "durable_agents.agent": event.agent,
            "durable_agents.unit": event.name,
            "durable_agents.unit.kind": event.kind.value,
            "durable_agents.unit.label": event.label,
            "durable_agents.unit.attempt": UNIT_ATTEMPT.get(),
        }
        slot.span = _tracer().start_span(f"durable_agents unit {event.label}", parent_ctx, attributes=attributes)
        slot.label = event.label
        slot.token = otel_context.attach(trace.set_span_in_context(slot.span))
    notify(event)


def annotate_unit(attributes: dict[str, Any]) -> None:
    """Add attributes to the span of the unit execution in progress (token usage of a model request)."""
    slot = _SLOT.get()
    if slot is not None and slot.span is not None:
        slot.span.set_attributes(attributes)


def _outcome_of(output: bytes) -> tuple[str, str | None]:
    """The outcome tag of a unit's output frame, and the error type of an error outcome."""
    head = output[:64]
    if not head.startswith(b'{"t":"'):
        return "unknown", None
    tag = head[6:].split(b'"', 1)[0].decode(errors="replace")
    if tag != "error":
        return tag, None
    try:
        data: Any = pydantic_core.from_json(output)
        error_type = cast(dict[str, Any], data).get("type") if isinstance(data, dict) else None
    except ValueError:
        error_type = None
    return tag, error_type if isinstance(error_type, str) else "Error"


def _finish(slot: _UnitSlot, input_size: int, output: bytes | None, error: BaseException | None) -> None:
    attempt = UNIT_ATTEMPT.get()
    label = slot.label or slot.unit_name
    log = engine_logger(slot.owner.engine)
    outcome, error_type = _outcome_of(output) if output is not None else ("exception", None)
    if error is not None:
        # The engine retries it (per the unit's config) or gives up; no payload, no message text: they may hold secrets.
        error_type = type(error).__name__
        log.warning(
            "Unit %s failed on attempt %d with %s; the engine retries it if its config allows.",
            label,
            attempt,
            error_type,
        )
    elif error_type is not None:
        log.error("Unit %s failed for good on attempt %d with %s (not retried).", label, attempt, error_type)
    span = slot.span
    if span is None:
        return
    span.set_attributes({"durable_agents.unit.input_bytes": input_size, "durable_agents.unit.outcome": outcome})
    if output is not None:
        span.set_attribute("durable_agents.unit.output_bytes", len(output))
    if error is not None:
        span.record_exception(error)
    if error_type is not None:
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))
    if slot.token is not None:
        otel_context.detach(slot.token)  # pyright: ignore[reportArgumentType]
    span.end()


# ----------------------------------------------------------------------------------------------- replay


def _replay_api() -> tuple[Callable[..., Any] | None, Callable[..., Any] | None]:
    try:
        from pydantic_ai import durable_exec
    except ImportError:  # pragma: no cover
        return None, None
    return getattr(durable_exec, "replay_scope", None), getattr(durable_exec, "record_durable_unit", None)


_REPLAY_SCOPE, _RECORD_UNIT = _replay_api()


def replay_scope(is_replaying: Callable[[], bool] | None) -> Any:
    """pydantic-ai's `replay_scope` around a durable run, so its spans of replayed work are not emitted again.

    Temporal says when it replays (`is_replaying`); other engines report each unit
    ([`record_unit`][durable_agents._telemetry.record_unit]). Before pydantic-ai 2.68, which added it: nothing.
    """
    return _REPLAY_SCOPE(is_replaying=is_replaying) if _REPLAY_SCOPE is not None else nullcontext()


@contextmanager
def record_unit(report: bool) -> Generator[_Executed | None]:
    """Around a unit call in the container: tell pydantic-ai whether the unit ran here or came from the journal.

    Only for engines whose units run in the container's process (DBOS steps, Prefect tasks, local units): the
    body marks that it ran, and the marker is given to the caller. `report=False` (Temporal, which says when it
    replays instead) reports nothing and gives `None`.
    """
    if not report:
        yield None
        return
    executed = _Executed()
    token = _EXECUTED.set(executed)
    try:
        yield executed
    finally:
        _EXECUTED.reset(token)
    if _RECORD_UNIT is not None:
        _RECORD_UNIT(executed=executed.ran)
