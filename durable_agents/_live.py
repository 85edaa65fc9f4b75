"""Live agent events: what a run publishes so that another process can watch it, and how a watcher reads them.

A run with [`LiveEvents`][durable_agents.LiveEvents] publishes *records*, each one batch of pydantic-ai
`AgentStreamEvent`s under a key that is the same whenever the batch is published again:

- **agent-level events** (tool calls and results, the final result, ...) are published by the container, one
  record per graph node, keyed by the run and the node's place in it. The container is deterministic, so a replay
  or a resume publishes the same records under the same keys (and engines that journal the container, DBOS and
  Temporal, do not publish them again at all);
- **model response events** (part start, deltas, part end) are published by the model unit while the model
  streams, every `delta_interval` seconds, with consecutive deltas of a part merged into one. Keyed by the run,
  the request's place in the conversation and the batch's number, so a retried model unit that streams the same
  answer again repeats only keys already seen.

Each engine stores records in an append-only log of the container run (a DBOS stream, a workflow-side buffer on
Temporal, Prefect artifacts, a list in process). A watcher reads that log from its start, keeps the first record
of each key, and numbers the events of the records it keeps: an event's offset is stable, so a watcher can
resume after the last offset it saw.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai.messages import AgentStreamEvent, PartDeltaEvent, TextPartDelta, ToolCallPartDelta

from .exceptions import ConfigurationError, ProtocolError

__all__ = [
    "LiveEvents",
    "LiveRecord",
    "ModelEventsPublisher",
    "decode_record",
    "encode_record",
    "live_events_option",
    "watch_records",
]


@dataclass(frozen=True)
class LiveEvents:
    """Publish a run's agent events so that [`watch()`][durable_agents.DurableAgent.watch] can follow it from outside.

    Pass it to a wrapper as `live_events=LiveEvents(...)` (or `live_events=True` for the defaults).
    """

    delta_interval: float = 0.5
    """Seconds between two records of a streaming model response: the text and tool-call deltas of that time are
    merged, so a long answer makes a few records, not one per token. A record goes out this long after its first
    event even when the model sends nothing more. `0` publishes every delta as it comes."""


def live_events_option(value: LiveEvents | bool | None) -> LiveEvents | None:
    """The `live_events=` argument of a wrapper, checked."""
    if value is None or value is False:
        return None
    if value is True:
        return LiveEvents()
    if not isinstance(value, LiveEvents):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ConfigurationError(f"live_events= takes a LiveEvents or a bool; got {value!r}.")
    interval = value.delta_interval
    if not isinstance(interval, int | float) or not math.isfinite(interval) or interval < 0:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ConfigurationError(
            f"LiveEvents(delta_interval={interval!r}) must be a number of seconds, 0 or more. "
            "Fix: e.g. LiveEvents(delta_interval=0.5)."
        )
    return value


@dataclass
class LiveRecord:
    """One published batch of a run's events."""

    key: str
    """Unique per batch and the same when the batch is published again (see the module docstring)."""
    events: list[AgentStreamEvent] = field(default_factory=list[AgentStreamEvent])
    v: int = 1


_RECORD = TypeAdapter(LiveRecord)


def encode_record(key: str, events: list[AgentStreamEvent]) -> str:
    """A record as JSON text (every engine stores text)."""
    return _RECORD.dump_json(LiveRecord(key, events)).decode()


def decode_record(data: str | bytes) -> LiveRecord:
    """A record from its JSON text."""
    try:
        return _RECORD.validate_json(data)
    except ValueError as exc:
        raise ProtocolError(f"A live events record could not be read: {exc}") from exc


async def watch_records(records: AsyncIterable[str | bytes], after: int) -> AsyncIterator[tuple[int, AgentStreamEvent]]:
    """The events of an engine's raw log of records, each with its offset, from offset `after + 1` on.

    Records whose key was seen before (a batch published again) are skipped.
    """
    seen: set[str] = set()
    offset = -1
    async for data in records:
        record = decode_record(data)
        if record.key in seen:
            continue
        seen.add(record.key)
        for event in record.events:
            offset += 1
            if offset > after:
                yield offset, event


def _merge(previous: AgentStreamEvent, event: AgentStreamEvent) -> AgentStreamEvent | None:
    """Two consecutive deltas of one part as one, if they merge (text, or tool-call arguments as text)."""
    if not (isinstance(previous, PartDeltaEvent) and isinstance(event, PartDeltaEvent)):
        return None
    if previous.index != event.index:
        return None
    a, b = previous.delta, event.delta
    if isinstance(a, TextPartDelta) and isinstance(b, TextPartDelta):
        if a.provider_details or b.provider_details or a.citations_delta or b.citations_delta:
            return None
        return replace(previous, delta=replace(a, content_delta=a.content_delta + b.content_delta))
    if isinstance(a, ToolCallPartDelta) and isinstance(b, ToolCallPartDelta):
        if b.tool_name_delta or b.tool_call_id or b.provider_details:
            return None
        if isinstance(a.args_delta, str) and isinstance(b.args_delta, str):
            return replace(previous, delta=replace(a, args_delta=a.args_delta + b.args_delta))
    return None


class ModelEventsPublisher:
    """Publishes a model unit's stream in records of `delta_interval` seconds, deltas merged.

    A batch is published once it is `delta_interval` old, by the next event or, when the model goes quiet (a slow
    model, a long tool-call argument being thought out), by a timer: a watcher never waits for the next token to see
    the last one. `close()` publishes the rest and stops the timer.
    """

    def __init__(self, key: str, interval: float, publish: Callable[[str], Awaitable[None]]) -> None:
        self._key = key
        self._interval = interval
        self._publish = publish
        self._batch: list[AgentStreamEvent] = []
        self._count = 0
        self._since = time.monotonic()
        self._lock = asyncio.Lock()  # the timer and the stream publish in turn: records keep their order
        self._timer: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def add(self, event: AgentStreamEvent) -> None:
        """Take one event of the stream; publish the batch when it is `delta_interval` old."""
        if self._error is not None:
            raise self._error
        merged = _merge(self._batch[-1], event) if self._batch else None
        if merged is None:
            self._batch.append(event)
        else:
            self._batch[-1] = merged
        if time.monotonic() - self._since >= self._interval:
            await self.flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(max(0.0, self._since + self._interval - time.monotonic()))
        self._timer = None
        try:
            # Shielded: stopping the timer never drops a batch it has taken.
            await asyncio.shield(self.flush())
        except Exception as exc:  # raised to the stream by the next `add`, or by `close`
            self._error = exc

    async def flush(self) -> None:
        """Publish what is batched."""
        async with self._lock:
            self._since = time.monotonic()
            if not self._batch:
                return
            batch, self._batch = self._batch, []
            await self._publish(encode_record(f"{self._key}.{self._count}", batch))
            self._count += 1

    async def close(self) -> None:
        """Stop the timer and publish the rest."""
        self.stop()
        await self.flush()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop the timer, publishing nothing more (a batch it is publishing still goes out)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    async def tap(self, stream: AsyncIterable[Any]) -> AsyncIterator[Any]:
        """`stream`, every event of which is also published."""
        async for event in stream:
            await self.add(event)
            yield event
