"""A unit's activity heartbeats while its body runs, stops when it ends or is cancelled, and never outside one."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from durable_agents import Unit, UnitKind
from durable_agents.temporal._agent import _activity_for  # pyright: ignore[reportPrivateUsage]
from durable_agents.temporal._payloads import frame_of, payload_of


def _sleeping_unit(seconds: float) -> Unit:
    async def body(payload: bytes) -> bytes:
        await asyncio.sleep(seconds)
        return payload

    return Unit("a.model", UnitKind.MODEL, body)


def _environment(beats: list[float], heartbeat_timeout: timedelta | None) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=heartbeat_timeout)
    loop = asyncio.get_running_loop()
    env.on_heartbeat = lambda *details: beats.append(loop.time())
    return env


async def test_beats_every_third_of_the_heartbeat_timeout_until_the_body_returns() -> None:
    beats: list[float] = []
    env = _environment(beats, timedelta(seconds=0.3))
    assert frame_of(await env.run(_activity_for(_sleeping_unit(0.55)), payload_of(b"x"))) == b"x"
    assert 4 <= len(beats) <= 7, beats  # at 0, 0.1, 0.2 ... 0.5 s
    done = len(beats)
    await asyncio.sleep(0.3)
    assert len(beats) == done  # the beating task ended with the body


async def test_a_cancelled_unit_stops_beating() -> None:
    beats: list[float] = []
    env = _environment(beats, timedelta(seconds=0.3))
    run = asyncio.ensure_future(env.run(_activity_for(_sleeping_unit(10)), payload_of(b"x")))
    await asyncio.sleep(0.25)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    cancelled = len(beats)
    assert cancelled >= 2
    await asyncio.sleep(0.3)
    assert len(beats) == cancelled


async def test_without_a_heartbeat_timeout_it_still_beats_and_outside_an_activity_it_does_not() -> None:
    beats: list[float] = []
    env = _environment(beats, None)
    assert frame_of(await env.run(_activity_for(_sleeping_unit(0.05)), payload_of(b"x"))) == b"x"
    assert len(beats) == 1  # one beat at once, the next would come 10 s later
    # Called by hand, outside any activity: `activity.heartbeat()` would raise, so nothing beats.
    assert frame_of(await _activity_for(_sleeping_unit(0.05))(payload_of(b"y"))) == b"y"
