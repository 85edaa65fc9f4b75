"""Workflow history grows linearly with the number of tool rounds, and long runs continue as new."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from durable_agents._history import HISTORY_CACHE
from durable_agents.temporal import HistoryStats, history_stats

from . import workflows as w
from .conftest import new_id

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]


async def _run_growth(client: Client, task_queue: str, k: int) -> HistoryStats:
    handle = await client.start_workflow(w.GrowthWorkflow.run, k, id=new_id(), task_queue=task_queue)
    output = await handle.result()
    assert output == "done: " + ", ".join(f"r{i}" for i in range(k))
    return await history_stats(handle)


async def test_history_bytes_grow_linearly(client: Client, task_queue: str) -> None:
    sizes = {k: (await _run_growth(client, task_queue, k)).bytes for k in w.GROWTH_KS}
    print("history bytes by K:", sizes)
    assert sizes[64] <= 300_000
    for small, large in ((8, 16), (16, 32), (32, 64)):
        ratio = sizes[large] / sizes[small]
        assert 1.7 <= ratio <= 2.3, (small, large, ratio)


async def test_a_worker_without_the_history_rebuilds_it_from_the_workflow_history(
    client: Client, task_queue: str
) -> None:
    # As on a fleet: the worker never holds the run's history (every entry is evicted at once, and it may not read
    # the workflow's live log), so each model activity reads the run's earlier model activities back from the
    # server instead of asking the workflow to resend: no extra activity, no quadratic history.
    max_runs = HISTORY_CACHE.max_runs
    HISTORY_CACHE.max_runs = 0
    HISTORY_CACHE.share_live_logs = False
    recoveries = HISTORY_CACHE.recoveries
    try:
        stats = await _run_growth(client, task_queue, 8)
    finally:
        HISTORY_CACHE.max_runs = max_runs
        HISTORY_CACHE.share_live_logs = True
    assert stats.activity_types.count("growth8.model") == 1 + 8
    assert HISTORY_CACHE.recoveries - recoveries == 8


async def test_history_after_a_cache_miss_resends_once_and_finishes(client: Client, task_queue: str) -> None:
    # Without the engine's record either, the unit answers "miss" and the workflow resends everything once.
    max_runs = HISTORY_CACHE.max_runs
    HISTORY_CACHE.max_runs = 0
    HISTORY_CACHE.share_live_logs = False
    HISTORY_CACHE.read_engine_records = False
    try:
        stats = await _run_growth(client, task_queue, 8)
    finally:
        HISTORY_CACHE.max_runs = max_runs
        HISTORY_CACHE.share_live_logs = True
        HISTORY_CACHE.read_engine_records = True
    assert stats.activity_types.count("growth8.model") == 1 + 2 * 8


async def test_a_miss_on_a_history_three_times_the_payload_limit_completes(client: Client, task_queue: str) -> None:
    # The resend is split into history pieces that each fit the agent's 20 KB limit.
    HISTORY_CACHE.share_live_logs = False
    HISTORY_CACHE.read_engine_records = False
    misses = HISTORY_CACHE.misses
    try:
        handle = await client.start_workflow(w.BulkyWorkflow.run, id=new_id(), task_queue=task_queue)
        assert await handle.result() == "ok"
    finally:
        HISTORY_CACHE.share_live_logs = True
        HISTORY_CACHE.read_engine_records = True
    stats = await history_stats(handle)
    history = stats.activity_input_bytes + stats.activity_result_bytes
    assert history > 3 * 20_000
    assert HISTORY_CACHE.misses > misses
    # 9 requests, at least one miss answered by a resend in pieces, and no activity input over the limit.
    assert stats.activity_types.count("bulky.model") >= 9 + 1 + 3


async def test_long_run_continues_as_new_with_its_conversation(client: Client, task_queue: str) -> None:
    bare = await w.build_agent("bare", 12).run("go")
    handle = await client.start_workflow(w.LongRunWorkflow.run, w.LongInput("go"), id=new_id(), task_queue=task_queue)
    result = await handle.result()
    assert result.output == bare.output
    assert result.generations >= 2
    last = await history_stats(handle)
    assert last.events <= 60
