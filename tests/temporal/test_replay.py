"""Recorded histories of tool-using agents replay without nondeterminism errors."""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from durable_agents.temporal import DurableAgentsPlugin

from . import workflows as w
from .make_histories import HISTORIES, RECORDINGS

pytestmark = [pytest.mark.temporal, pytest.mark.asyncio(loop_scope="module")]


# Every unit format keeps its histories here: `v0-early` (before request-parameter deltas), `v0` (the unversioned
# format of December 2026, binary payloads) and `v1` (versioned frames as json/plain payloads). New code must
# replay all of them.
FORMATS = sorted(p.name for p in HISTORIES.parent.iterdir() if p.is_dir())


def _history(name: str, fmt: str = HISTORIES.name) -> WorkflowHistory:
    text = (HISTORIES.parent / fmt / f"{name}.json").read_text()
    return WorkflowHistory.from_json(f"replay-{name}", json.loads(text))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", [r[0] for r in RECORDINGS])
async def test_recorded_history_replays(name: str, fmt: str) -> None:
    history = _history(name, fmt)
    activities = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    assert len(activities) >= 5  # a tool-using run, not an empty one
    replayer = Replayer(workflows=w.ALL_WORKFLOWS, plugins=[DurableAgentsPlugin()])
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None


async def test_a_changed_workflow_is_caught_on_replay() -> None:
    replayer = Replayer(workflows=[w.ChangedLoopWorkflow], plugins=[DurableAgentsPlugin()])
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(_history("loop"))


@pytest.mark.parametrize("fmt", FORMATS)
async def test_histories_are_committed(fmt: str) -> None:
    assert FORMATS, "no recorded histories"
    found = sorted(p.name for p in (HISTORIES.parent / fmt).glob("*.json"))
    assert found == sorted(f"{r[0]}.json" for r in RECORDINGS)
