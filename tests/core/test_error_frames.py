"""Error outcomes are rebuilt from an allow-list: a frame written by whoever can write a journal imports nothing."""

from __future__ import annotations

import json
import os
import sys

import pytest

from durable_agents._errors import rebuild_error
from durable_agents._frames import ErrorOutcome, decode_outcome
from durable_agents.exceptions import UnitFailedError

PROBE = "tests.core.import_probe"


@pytest.mark.parametrize(
    "error", [f"{PROBE}.ProbeError", f"{PROBE}:ProbeError", PROBE, "ProbeError", "os.system", "builtins.exec"]
)
def test_a_crafted_error_frame_imports_nothing(error: str) -> None:
    sys.modules.pop(PROBE, None)
    os.environ.pop("DURABLE_AGENTS_IMPORT_PROBE", None)
    frame = json.dumps({"t": "error", "error": error, "message": "crafted", "attrs": {"module": PROBE}}).encode()
    outcome = decode_outcome(frame)
    assert isinstance(outcome, ErrorOutcome)
    rebuilt = rebuild_error("agent.model", outcome)
    assert isinstance(rebuilt, UnitFailedError)
    assert error in str(rebuilt) and "crafted" in str(rebuilt)
    assert PROBE not in sys.modules
    assert "DURABLE_AGENTS_IMPORT_PROBE" not in os.environ
