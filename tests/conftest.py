"""Test-suite wide settings, and the session's Prefect server (shared by the Prefect and the parity tests).

Prefect reads its settings when it is imported, so its environment is set here, before any test module
imports `prefect`; subprocesses (crash, serve) inherit it. The server itself starts only when a test asks
for it.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable_agents.testing import PostgresCluster, PrefectServer

_ROOT = Path(tempfile.mkdtemp(prefix="durable-agents-prefect-"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_API_PORT = _free_port()
_PG_PORT = _free_port()

os.environ.update(
    {
        "PREFECT_HOME": str(_ROOT / "home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{_API_PORT}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{_PG_PORT}/prefect",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
)

_PG = PostgresCluster(port=_PG_PORT)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A Prefect server on a throwaway PostgreSQL cluster; yields the API URL."""
    if not _PG.available():
        pytest.fail("PostgreSQL 15 binaries are required for the Prefect tests (Debian package postgresql-15).")
    _PG.start()
    _PG.create_database("prefect")
    server = PrefectServer(_API_PORT, _ROOT / "server.log")
    try:
        try:
            server.start()
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield server.api_url
    finally:
        server.stop()
        _PG.stop()
        shutil.rmtree(_ROOT, ignore_errors=True)


PREFECT_WARNING_FILTERS = (
    # Prefect's API and events clients leave keep-alive sockets to the server for the garbage collector
    # (seen with prefect 3.8.8); they are closed at exit, not leaked per run.
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"),
    # `run_sync` runs Prefect's async flow through pydantic-ai's sync bridge, whose loop Prefect keeps referenced
    # until the garbage collector closes it.
    pytest.mark.filterwarnings("ignore:unclosed event loop:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <function BaseEventLoop:pytest.PytestUnraisableExceptionWarning"
    ),
)
"""Warning filters every test that runs Prefect flows needs."""


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
