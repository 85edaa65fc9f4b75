"""Fixtures for the DBOS tests: a throwaway PostgreSQL cluster, and a fresh DBOS system database per test.

Every test builds its agents first and then calls `launch()`, as an application does at import time;
teardown destroys DBOS and its registry so the next test can register agents of the same names.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dbos import DBOS

from durable_agents.testing import PostgresCluster

APP_VERSION = "durable-agents-tests"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL 15 cluster on a free loopback port, for the whole session; stopped and deleted at the end."""
    cluster = PostgresCluster()
    if not cluster.available():
        pytest.fail(f"PostgreSQL server binaries not found in {cluster.bin_dir} (Debian package postgresql-15).")
    with cluster:
        yield cluster.url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty DBOS system database: a SQLite file, or a new database in the session's cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    base: str = request.getfixturevalue("pg_url")
    return f"{base}/t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite system database, for tests whose subject does not depend on the database."""
    return f"sqlite:///{tmp_path / 'dbos.sqlite'}"


def dbos_config(url: str, executor_id: str | None = None) -> dict[str, object]:
    """The DBOS config the tests (and their subprocesses) use."""
    config: dict[str, object] = {
        "name": "durable-agents-tests",
        "system_database_url": url,
        "application_version": APP_VERSION,
        "log_level": "WARNING",
    }
    if executor_id is not None:
        config["executor_id"] = executor_id
    return config


def _reset() -> None:
    DBOS.destroy(destroy_registry=True)


@pytest.fixture
def launch(db_url: str) -> Iterator[Callable[[], None]]:
    """Call it after building the test's agents: constructs DBOS on `db_url` and launches it."""
    _reset()
    yield lambda: _launch(db_url)
    _reset()


@pytest.fixture
def launch_sqlite(sqlite_url: str) -> Iterator[Callable[[], None]]:
    """Like `launch`, on SQLite only."""
    _reset()
    yield lambda: _launch(sqlite_url)
    _reset()


def _launch(url: str) -> None:
    DBOS(config=dbos_config(url))  # type: ignore[arg-type]
    DBOS.launch()
