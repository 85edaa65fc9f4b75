"""Test-suite wide settings."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # temporalio's Rust core can abort at interpreter exit after every test passed (sdk-python#300), turning a
    # green run red with code 134. Leave with pytest's own status once it has reported.
    if os.environ.get("DURABLE_AGENTS_HARD_EXIT", "1") == "1":
        status = getattr(config, "_durable_agents_status", None)
        if status is not None:
            os._exit(int(status))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._durable_agents_status = exitstatus  # type: ignore[attr-defined]
