"""The environment that points a subprocess (an example, a docs page run as a script) at the test engines.

Scripts read the engines' addresses from the environment, as `examples/` documents: `TEMPORAL_ADDRESS` for the
Temporal dev server of `tests/temporal/conftest.py`, `PREFECT_API_URL` for the session's Prefect server of
`tests/conftest.py` (already in `os.environ`, with Prefect's other settings), and DBOS on a SQLite file in the
script's working directory. Servers start only for scripts that use their engine.
"""

from __future__ import annotations

import os
import re

import pytest

ENGINES = ("temporal", "prefect", "dbos")
_USES = {
    "temporal": re.compile(r"^\s*(from|import) (temporalio|durable_agents\.temporal)\b", re.MULTILINE),
    "prefect": re.compile(r"^\s*(from|import) (prefect|durable_agents\.prefect)\b", re.MULTILINE),
    "dbos": re.compile(r"^\s*(from|import) (dbos|durable_agents\.dbos)\b", re.MULTILINE),
}


def engines_used(source: str) -> list[str]:
    """The engines whose modules a script imports."""
    return [engine for engine in ENGINES if _USES[engine].search(source)]


def engine_marks(source: str) -> list[pytest.MarkDecorator]:
    """`-m temporal` and friends select the scripts that need that engine."""
    return [getattr(pytest.mark, engine) for engine in engines_used(source)]


def script_env(request: pytest.FixtureRequest, source: str) -> dict[str, str]:
    """The environment for a subprocess running `source`, with the servers it needs started."""
    env = dict(os.environ)
    env.pop("DBOS_SYSTEM_DATABASE_URL", None)  # a SQLite file in the script's scratch directory
    used = engines_used(source)
    if "temporal" in used:
        temporal_env = request.getfixturevalue("temporal_env")
        env["TEMPORAL_ADDRESS"] = temporal_env.client.service_client.config.target_host
    if "prefect" in used:
        env["PREFECT_API_URL"] = request.getfixturevalue("prefect_server")
    return env
