"""Bad run input is refused on every engine when `run()` is called: a typed error, and nothing ran."""

from __future__ import annotations

import asyncio
import time

import pytest

from . import scenarios
from .conftest import RunFailed, Runner

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize("case", scenarios.BAD_INPUTS)
async def test_a_prompt_or_history_that_cannot_cross_the_boundary_is_refused_before_anything_runs(
    run: Runner, case: str
) -> None:
    started = time.monotonic()
    with pytest.raises(RunFailed) as info:
        # The guard only turns a hang (Temporal retried the workflow task forever) into a failure.
        await asyncio.wait_for(run("parity_bad_input", "go", f"bad:{case}"), timeout=30)
    elapsed = time.monotonic() - started

    assert info.value.error_type == "InvalidRunInputError"
    assert "Fix:" in str(info.value)
    assert ("The prompt of a run" if "prompt" in case else "message_history[0] of a run") in str(info.value)
    assert scenarios.CALLS["parity_bad_input.model"] == 0
    assert scenarios.CALLS["parity_bad_input.step"] == 0
    assert elapsed < 5, f"refused after {elapsed:.1f}s"


async def test_the_bad_input_scenario_runs_when_its_input_is_good(run: Runner) -> None:
    assert await run("parity_bad_input", "go") == "ok"
    assert scenarios.CALLS["parity_bad_input.step"] == 3
