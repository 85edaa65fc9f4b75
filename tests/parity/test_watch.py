"""Watching a run's agent events from outside, on every engine (`live_events=` and `watch()`).

The agent of `watch_app` makes four tool rounds and then streams its answer. The tests hold the fourth round
until a watcher has joined, so "joins after three rounds" is a fact, not a race; no sleeps.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pydantic_core
import pytest
from pydantic_ai.messages import (
    AgentStreamEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolCallPartDelta,
)

from durable_agents import DurableAgent, LiveEvents
from durable_agents._live import decode_record
from durable_agents.exceptions import ConfigurationError, UnknownRunError
from tests.conftest import PREFECT_WARNING_FILTERS

from . import watch_app
from .conftest import temporal_worker

pytestmark = pytest.mark.asyncio(loop_scope="module")

ENGINES = [
    "local",
    pytest.param("dbos", marks=pytest.mark.dbos),
    pytest.param("temporal", marks=pytest.mark.temporal),
    pytest.param("prefect", marks=[pytest.mark.prefect, *PREFECT_WARNING_FILTERS]),
]


@dataclass
class Engine:
    """Start a run of the `watch_app` agent under an id, and watch a run by id, on one engine."""

    name: str
    start: Callable[[str], Awaitable[str]]
    watch: Callable[..., AsyncIterator[tuple[int, AgentStreamEvent]]]
    records: Callable[[str], AsyncIterator[str]]
    """The raw log of a run, republished records included."""
    start_batched: Callable[[str], Awaitable[str]]
    """Start a run of the same agent whose wrapper batches deltas every 0.2 s (`watch_app.BATCHED`)."""
    watch_batched: Callable[..., AsyncIterator[tuple[int, AgentStreamEvent]]]


def _local() -> Engine:
    from durable_agents.local import LocalAgent, LocalUnitConfig

    local = LocalAgent(watch_app.agent, unit_config=LocalUnitConfig(max_attempts=5), live_events=watch_app.LIVE)
    batched = LocalAgent(watch_app.batched_agent, live_events=watch_app.BATCHED)

    async def start(run_id: str) -> str:
        return str((await local.run("go", run_id=run_id)).output)

    async def start_batched(run_id: str) -> str:
        return str((await batched.run("go", run_id=run_id)).output)

    return Engine("local", start, local.watch, local.live_records, start_batched, batched.watch)


@pytest.fixture(scope="module")
def dbos_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    from dbos import DBOS

    from durable_agents.dbos import DBOSAgent, StepConfig

    DBOS.destroy(destroy_registry=True)
    dbos_agent = DBOSAgent(
        watch_app.agent,
        step_config=StepConfig(retries_allowed=True, max_attempts=5, interval_seconds=0.05, backoff_rate=1.0),
        live_events=watch_app.LIVE,
    )
    batched = DBOSAgent(watch_app.batched_agent, live_events=watch_app.BATCHED)
    url = f"sqlite:///{tmp_path_factory.mktemp('dbos') / 'watch.sqlite'}"
    DBOS(config={"name": "watch", "system_database_url": url, "application_version": "watch", "log_level": "WARNING"})
    DBOS.launch()

    async def start(run_id: str) -> str:
        return str((await dbos_agent.run("go", run_id=run_id)).output)

    async def start_batched(run_id: str) -> str:
        return str((await batched.run("go", run_id=run_id)).output)

    yield Engine("dbos", start, dbos_agent.watch, dbos_agent.live_records, start_batched, batched.watch)
    DBOS.destroy(destroy_registry=True)


@pytest.fixture(scope="module")
def prefect_engine(prefect_server: str) -> Iterator[Engine]:
    from durable_agents.prefect import PrefectAgent, TaskConfig

    prefect_agent = PrefectAgent(
        watch_app.agent, task_config=TaskConfig(retries=4, retry_delay_seconds=0), live_events=watch_app.LIVE
    )
    batched = PrefectAgent(watch_app.batched_agent, live_events=watch_app.BATCHED)

    async def start(run_id: str) -> str:
        return str((await prefect_agent.run("go", run_id=run_id)).output)

    def watch(run_id: str, *, after: int = -1) -> AsyncIterator[tuple[int, AgentStreamEvent]]:
        return prefect_agent.watch(run_id, after=after, poll_interval=0.1)

    async def start_batched(run_id: str) -> str:
        return str((await batched.run("go", run_id=run_id)).output)

    def watch_batched(run_id: str, *, after: int = -1) -> AsyncIterator[tuple[int, AgentStreamEvent]]:
        return batched.watch(run_id, after=after, poll_interval=0.1)

    yield Engine("prefect", start, watch, prefect_agent.live_records, start_batched, watch_batched)
    gc.collect()


@pytest.fixture(scope="module")
async def temporal_engine() -> AsyncIterator[Engine]:
    agents = [watch_app.temporal_agent, watch_app.batched_temporal_agent]
    async with temporal_worker([watch_app.LiveStepsWorkflow], agents) as (client, queue):

        async def start(run_id: str, batched: bool = False) -> str:
            return await client.execute_workflow(
                watch_app.LiveStepsWorkflow.run,
                args=["go", batched],
                id=run_id,
                task_queue=queue,
                execution_timeout=timedelta(seconds=60),
            )

        def watch(run_id: str, *, after: int = -1) -> AsyncIterator[tuple[int, AgentStreamEvent]]:
            return watch_app.temporal_agent.watch(run_id, after=after, client=client, poll_interval=0.05)

        def records(run_id: str) -> AsyncIterator[str]:
            return watch_app.temporal_agent.live_records(run_id, client=client)

        async def start_batched(run_id: str) -> str:
            return await start(run_id, batched=True)

        def watch_batched(run_id: str, *, after: int = -1) -> AsyncIterator[tuple[int, AgentStreamEvent]]:
            return watch_app.batched_temporal_agent.watch(run_id, after=after, client=client, poll_interval=0.05)

        yield Engine("temporal", start, watch, records, start_batched, watch_batched)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "local":
        return _local()
    return request.getfixturevalue(f"{request.param}_engine")


def _merged(events: list[AgentStreamEvent]) -> list[Any]:
    """Events as comparable data: consecutive deltas of a part merged, timestamps left out."""
    merged: list[AgentStreamEvent] = []
    for event in events:
        last = merged[-1] if merged else None
        if (
            isinstance(event, PartDeltaEvent)
            and isinstance(last, PartDeltaEvent)
            and last.index == event.index
            and type(last.delta) is type(event.delta)
        ):
            a, b = last.delta, event.delta
            if isinstance(a, TextPartDelta) and isinstance(b, TextPartDelta):
                merged[-1] = PartDeltaEvent(index=last.index, delta=TextPartDelta(a.content_delta + b.content_delta))
                continue
            if isinstance(a, ToolCallPartDelta) and isinstance(b, ToolCallPartDelta):
                args = str(a.args_delta or "") + str(b.args_delta or "")
                merged[-1] = PartDeltaEvent(index=last.index, delta=ToolCallPartDelta(args_delta=args))
                continue
        merged.append(event)
    return [_without_timestamps(pydantic_core.to_jsonable_python(event)) for event in merged]


def _without_timestamps(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_timestamps(v) for k, v in data.items() if k != "timestamp"}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(data, list):
        return [_without_timestamps(v) for v in data]  # pyright: ignore[reportUnknownVariableType]
    return data


def _tool_events(events: list[AgentStreamEvent]) -> list[tuple[str, str]]:
    return [
        (event.event_kind, event.part.tool_call_id)
        for event in events
        if isinstance(event, FunctionToolCallEvent | FunctionToolResultEvent)
    ]


async def _reference_events() -> list[AgentStreamEvent]:
    """What a per-run `event_stream_handler` sees of the same run on the local engine."""
    from durable_agents.local import LocalAgent

    seen: list[AgentStreamEvent] = []

    async def handler(ctx: Any, stream: Any) -> None:
        async for event in stream:
            seen.append(event)

    watch_app.reset()
    await LocalAgent(watch_app.agent).run("go", event_stream_handler=handler)
    return seen


EXPECTED_TOOL_EVENTS = [
    (kind, f"call-{n}")
    for n in range(1, watch_app.ROUNDS + 1)
    for kind in ("function_tool_call", "function_tool_result")
]


async def test_a_late_watcher_gets_every_event_from_offset_0_then_live_ones(engine: Engine) -> None:
    reference = await _reference_events()
    watch_app.reset(hold=True)
    run_id = f"watch-{uuid.uuid4().hex[:12]}"
    run = asyncio.create_task(engine.start(run_id))
    assert await asyncio.to_thread(watch_app.REACHED.wait, 60), "the run did not reach its fourth tool round"

    got: list[tuple[int, AgentStreamEvent]] = []
    caught_up = asyncio.Event()

    async def follow() -> None:
        async for offset, event in engine.watch(run_id):
            got.append((offset, event))
            if isinstance(event, FunctionToolResultEvent) and event.part.tool_call_id == "call-3":
                caught_up.set()

    watcher = asyncio.create_task(follow())
    await asyncio.wait_for(caught_up.wait(), 30)
    # The fourth round is held: what the watcher has is the past, up to the third tool result.
    before = len(got)
    assert _tool_events([e for _, e in got]) == EXPECTED_TOOL_EVENTS[:6]
    watch_app.GATE.set()
    assert await asyncio.wait_for(run, 60) == "".join(watch_app.ANSWER)
    await asyncio.wait_for(watcher, 30)  # the watch ends with the run

    events = [event for _, event in got]
    assert [offset for offset, _ in got] == list(range(len(got)))
    assert len(got) > before  # live events came after the watcher caught up
    assert _tool_events(events) == EXPECTED_TOOL_EVENTS
    assert _merged(events) == _merged(reference)

    # Resumable: from any offset on, the same events.
    again = [item async for item in engine.watch(run_id, after=before - 1)]
    assert [offset for offset, _ in again] == list(range(before, len(got)))
    assert _merged([e for _, e in again]) == _merged(events[before:])


async def test_retried_units_publish_no_event_twice(engine: Engine) -> None:
    """The model unit fails twice after streaming part of its answer; `step(2)` fails twice. Each event once."""
    reference = await _reference_events()
    watch_app.reset(flaky=2)
    run_id = f"watch-{uuid.uuid4().hex[:12]}"
    assert await engine.start(run_id) == "".join(watch_app.ANSWER)
    assert watch_app.FLAKY == {"model": 0, "tool": 0}  # both units were retried twice

    events = [event async for _, event in engine.watch(run_id)]
    assert _tool_events(events) == EXPECTED_TOOL_EVENTS
    assert _merged(events) == _merged(reference)
    # The failed attempts of the model unit did publish the start of the answer: the log holds those records
    # twice more, and the watcher skipped them.
    keys = [decode_record(record).key async for record in engine.records(run_id)]
    repeated = {key: keys.count(key) for key in keys if keys.count(key) > 1}
    assert sorted(repeated.values()) == [3, 3, 3], repeated  # part start and two deltas, each sent three times


async def test_a_model_that_goes_quiet_does_not_hold_back_what_it_streamed(engine: Engine) -> None:
    """Deltas batched every 0.2 s; the model streams its first chunk and then goes quiet until the watcher saw it."""
    watch_app.reset(stall=True)
    run_id = f"watch-{uuid.uuid4().hex[:12]}"
    run = asyncio.create_task(engine.start_batched(run_id))
    assert await asyncio.to_thread(watch_app.STALLED.wait, 60), "the model did not start its answer"
    text: list[str] = []
    first_chunk = asyncio.Event()

    async def follow() -> None:
        async for _, event in engine.watch_batched(run_id):
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                text.append(event.part.content)
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                text.append(event.delta.content_delta)
            if "".join(text).startswith(watch_app.ANSWER[0]):
                first_chunk.set()

    watcher = asyncio.create_task(follow())
    try:
        # Before the batch had a timer, it waited for the model's next token, which never came.
        await asyncio.wait_for(first_chunk.wait(), 30)
    finally:
        watch_app.GATE.set()
    assert await asyncio.wait_for(run, 60) == "".join(watch_app.ANSWER)
    await asyncio.wait_for(watcher, 30)
    assert "".join(text) == "".join(watch_app.ANSWER)


async def test_watching_an_unknown_run_is_a_typed_error(engine: Engine) -> None:
    with pytest.raises(UnknownRunError, match="no run"):
        async for _ in engine.watch(f"never-{uuid.uuid4().hex[:8]}"):
            pass  # pragma: no cover


async def test_local_deltas_are_batched_by_interval() -> None:
    """With the default interval, the streamed answer's four deltas reach a watcher as one merged delta."""
    from durable_agents.local import LocalAgent

    local = LocalAgent(watch_app.agent, live_events=True)
    watch_app.reset()
    await local.run("go", run_id="batched")
    deltas = [e async for _, e in local.watch("batched") if isinstance(e, PartDeltaEvent)]
    assert [d.delta for d in deltas] == [TextPartDelta("".join(watch_app.ANSWER[1:]))]


async def test_live_events_config_is_checked() -> None:
    from durable_agents.local import LocalAgent

    with pytest.raises(ConfigurationError, match="delta_interval"):
        LocalAgent(watch_app.agent, live_events=LiveEvents(delta_interval=-1))
    assert DurableAgent.watch is LocalAgent.watch  # one API, in the core


def _on_prefect(test: Callable[..., Any]) -> Callable[..., Any]:
    for mark in (pytest.mark.prefect, *PREFECT_WARNING_FILTERS):
        test = mark(test)
    return test


@_on_prefect
async def test_a_prefect_flow_body_run_again_publishes_no_event_twice(prefect_server: str) -> None:
    """Prefect does not journal the flow body: a flow retry runs it again, and its records are published again."""
    from durable_agents.prefect import PrefectAgent

    # No task retries: step(2) failing fails the flow run, which Prefect retries; completed tasks are not re-run.
    prefect_agent = PrefectAgent(watch_app.replayed_agent, flow_retries=1, live_events=watch_app.LIVE)
    watch_app.reset()
    watch_app.FLAKY["tool"] = 1
    run_id = f"watch-{uuid.uuid4().hex[:12]}"
    result = await prefect_agent.run("go", run_id=run_id)
    assert result.output == "".join(watch_app.ANSWER)
    assert watch_app.FLAKY["tool"] == 0

    keys = [decode_record(record).key async for record in prefect_agent.live_records(run_id, poll_interval=0.1)]
    events = [event async for _, event in prefect_agent.watch(run_id, poll_interval=0.1)]
    assert len(keys) > len(set(keys))  # the second attempt of the flow body published its first records again
    assert _tool_events(events) == EXPECTED_TOOL_EVENTS
