"""Approvals bound to the call (`durable_agents.approve`) on every engine: an in-run approval (`RequestInput`) runs
the call it was taken for, and one taken for other arguments is refused with `ApprovalMismatchError`."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from durable_agents import approve, resolve_external_event

from . import scenarios
from .conftest import EVENT_OPTIONS, RunFailed, Runner

pytestmark = pytest.mark.asyncio(loop_scope="module")

NAME = "parity_in_run_approval"


@pytest.mark.parametrize("arguments", ["same", "changed"])
async def test_an_in_run_approval_runs_its_call_and_is_refused_for_changed_arguments(
    run: Runner, request: pytest.FixtureRequest, arguments: str
) -> None:
    engine = request.node.callspec.params["run"]
    running = asyncio.create_task(run(NAME, "go"))
    try:
        async with asyncio.timeout(30):  # acceptance bound: the run asks within 30 s
            while not scenarios.inbox.ASKED and not running.done():
                await asyncio.sleep(0.02)
        requests, token = scenarios.inbox.ASKED[0]
        (call,) = requests.approvals
        # A decision taken on another version of the call (another path) is sent for this call's id.
        decided = call if arguments == "same" else dataclasses.replace(call, args={"path": "/etc"})
        assert await resolve_external_event(token, approve(decided), **EVENT_OPTIONS.get(engine, {})) is True
        if arguments == "same":
            assert await asyncio.wait_for(running, 60) == "done: deleted a"
            assert scenarios.CALLS[f"{NAME}.delete"] == 1
        else:
            with pytest.raises(RunFailed) as failed:
                await asyncio.wait_for(running, 60)
            assert failed.value.error_type == "ApprovalMismatchError"
            assert "other arguments" in str(failed.value)
            assert scenarios.CALLS[f"{NAME}.delete"] == 0
    finally:
        running.cancel()
    assert len(scenarios.inbox.ASKED) == 1
