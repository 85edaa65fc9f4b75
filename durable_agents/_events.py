"""Event-stream handlers in a durable run (and the agent-level records of live events, see `_live.py`).

Real token streaming cannot leave a container, so the handler is called in two places:

1. **Inside the model unit**, on the live model stream (part start / delta / end events), as
   soon as tokens arrive.
2. **Through an events unit**, for agent-level events (tool calls and results, final result,
   deferred tool requests, ...): the container collects the events of each graph node and
   delivers them in one unit when the node finishes, in the order the node produced them. Tool
   calls that run in parallel report their events in call order (the container runs tools with
   pydantic-ai's `parallel_ordered_events` mode by default), so replays deliver the same sequence.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any

import pydantic_core
from pydantic_ai.messages import AgentStreamEvent, PartDeltaEvent, PartEndEvent, PartStartEvent
from pydantic_ai.tools import RunContext

from ._context import restore_ctx, snapshot_ctx
from ._errors import error_outcome, rebuild_error
from ._frames import DoneOutcome, ErrorOutcome, EventsInput, decode_input, decode_outcome, encode
from ._live import encode_record
from ._observers import UnitEvent
from ._policy import is_fatal
from ._run import current_run, traceparent_of
from ._telemetry import begin_unit
from ._units import UnitKind
from .exceptions import EventHandlerError, ProtocolError, SerializationError

if TYPE_CHECKING:
    from ._agent import DurableAgent

__all__ = ["collect_events", "events_unit_body"]

_LIVE_IN_MODEL_UNIT = (PartStartEvent, PartDeltaEvent, PartEndEvent)


def collect_events(owner: DurableAgent[Any, Any]) -> Any:
    """The container-side handler given to the wrapped agent: batches a node's events into one events unit."""

    async def handler(ctx: RunContext[Any], stream: AsyncIterable[AgentStreamEvent]) -> None:
        batch: list[AgentStreamEvent] = [event async for event in stream if not isinstance(event, _LIVE_IN_MODEL_UNIT)]
        state = current_run(owner.name)
        if not batch or state is None:
            return
        if owner.live_events is not None:
            # The container is deterministic: a replay publishes this record again under the same key.
            await owner.publish_live(encode_record(f"{state.run_key}:a{state.live_records}", batch))
            state.live_records += 1
        if state.handler is None:
            return
        unit = owner.events_unit
        try:
            payload = encode(
                EventsInput(
                    events=batch,
                    model=state.model_key,
                    ctx=snapshot_ctx(ctx),
                    deps=state.deps_json,
                    trace=traceparent_of(state),
                )
            )
        except pydantic_core.PydanticSerializationError as exc:
            raise SerializationError(f"The agent events of {owner.name!r} cannot be serialized: {exc}") from exc
        outcome = decode_outcome(await owner.call_unit(unit, payload, label=unit.name))
        if isinstance(outcome, ErrorOutcome):
            raise rebuild_error(unit.name, outcome)

    return handler


async def events_unit_body(owner: DurableAgent[Any, Any], payload: bytes) -> bytes:
    """The code of the events unit: hand a batch of agent-level events to the handler."""
    unit = owner.events_unit
    try:
        unit_input = decode_input(payload)
    except ProtocolError as exc:
        return encode(error_outcome(exc))
    begin_unit(UnitEvent(unit.name, UnitKind.EVENTS, unit.name, owner.name), getattr(unit_input, "trace", None))
    handler = owner.unit_event_handler()
    if handler is None:
        return encode(DoneOutcome())
    try:
        if not isinstance(unit_input, EventsInput):
            raise ProtocolError(f"The events unit {unit.name} got a {unit_input.t!r} input.")
        model = owner.context_model(unit_input.model)
        ctx = restore_ctx(unit_input.ctx, owner.deps_codec.decode_value(unit_input.deps), model)
        try:
            await handler(ctx, _iterate(unit_input.events))
        except Exception as exc:
            raise EventHandlerError(owner.name, unit.name, exc) from exc
    except Exception as exc:
        if is_fatal(exc):
            return encode(error_outcome(exc))
        raise
    return encode(DoneOutcome())


async def _iterate(events: list[AgentStreamEvent]) -> AsyncIterator[AgentStreamEvent]:
    for event in events:
        yield event
