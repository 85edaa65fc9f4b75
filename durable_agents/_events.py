"""Event-stream handlers in a durable run.

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

from pydantic_ai.messages import AgentStreamEvent, PartDeltaEvent, PartEndEvent, PartStartEvent
from pydantic_ai.tools import RunContext

from ._codec import EVENTS_TA, decode_error, encode_error, is_fatal, pack, restore_ctx, snapshot_ctx, unpack
from ._observers import UnitEvent, notify
from ._run import current_run
from ._units import UnitKind

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
        unit = owner.events_unit
        payload = pack(
            {"ctx": snapshot_ctx(ctx), "model": state.model_key}, [state.deps_bytes, EVENTS_TA.dump_json(batch)]
        )
        out = unpack(await owner.call_unit(unit, payload, label=unit.name))
        if out.header.get("kind") == "error":
            raise decode_error(unit.name, out.header)

    return handler


async def events_unit_body(owner: DurableAgent[Any, Any], payload: bytes) -> bytes:
    """The code of the events unit: hand a batch of agent-level events to the handler."""
    frame = unpack(payload)
    unit = owner.events_unit
    notify(UnitEvent(unit.name, UnitKind.EVENTS, unit.name, owner.name))
    handler = owner.unit_event_handler()
    if handler is None:
        return pack({"kind": "done"})
    try:
        model = owner.resolve_unit_model(frame.header["model"])
        ctx = restore_ctx(frame.header["ctx"], owner.deps_codec.decode(frame.chunks[0]), model)
        events = EVENTS_TA.validate_json(frame.chunks[1])
        await handler(ctx, _iterate(events))
    except Exception as exc:
        if is_fatal(exc):
            return pack(encode_error(exc))
        raise
    return pack({"kind": "done"})


async def _iterate(events: list[AgentStreamEvent]) -> AsyncIterator[AgentStreamEvent]:
    for event in events:
        yield event
