"""Secrets and model faults on every engine, through a real OpenAI model against the loopback server.

- `SecretStr` / `SecretBytes` deps reach the tool intact;
- `Secret` references (deps and model settings) are resolved in units and never stored: each engine's store is
  searched for the values (DBOS system tables on SQLite and PostgreSQL, the Temporal workflow history, the
  Prefect database and result storage);
- a persistent 503 with 3 configured attempts sends exactly 3 requests (the SDK's own retries are off for models
  the wrapper builds), and `Retry-After: 2` holds the next attempt back at least 2 s.
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A worker imports its model SDK before it runs workflows: imported first inside the workflow sandbox (by the
# container's model stand-in), on a loaded machine, openai's import can outlast the deadlock detector.
import openai  # noqa: F401  # pyright: ignore[reportUnusedImport]
import pytest
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from durable_agents.testing import FakeOpenAIServer, PostgresCluster
from tests.conftest import PREFECT_WARNING_FILTERS

from . import secret_app

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Engine:
    """One engine's way to run the two agents, and to read back everything it stored (`None`: stores nothing)."""

    name: str
    run_secrets: Callable[[str], Awaitable[str]]
    run_faults: Callable[[], Awaitable[str]]
    store: Callable[[], Awaitable[bytes]] | None = None


def searchable(raw: bytes) -> bytes:
    """`raw` plus the decoding of every base64 run in it (DBOS stores pickles, Temporal's JSON holds payloads so)."""
    decoded = [raw]
    for token in re.findall(rb"[A-Za-z0-9+/]{16,}={0,2}", raw):
        try:
            decoded.append(base64.b64decode(token + b"=" * (-len(token) % 4)))
        except (binascii.Error, ValueError):
            continue
    return b"\n".join(decoded)


def pg_dump(cluster: PostgresCluster, database: str) -> bytes:
    dump = subprocess.run(
        [str(cluster.bin_dir / "pg_dump"), "--data-only", cluster.database_url(database)],
        check=True,
        capture_output=True,
    )
    return dump.stdout


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply=secret_app.tool_then_answer) as fake:
        saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
        os.environ["OPENAI_BASE_URL"] = fake.base_url
        os.environ["OPENAI_API_KEY"] = "test-key"
        yield fake
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def fresh(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAIServer:
    """The server with no requests recorded, and the secrets' values in this process's environment."""
    server.requests.clear()
    server.statuses.clear()
    server.headers.clear()
    server.times.clear()
    server.faults.clear()
    secret_app.SEEN.clear()
    monkeypatch.setenv(secret_app.REF_ENV, f"ref-value-{uuid.uuid4().hex}")
    monkeypatch.setenv(secret_app.HEADER_ENV, f"header-value-{uuid.uuid4().hex}")
    return server


def _output(result: Any) -> str:
    return str(result.output)


@pytest.fixture(scope="module")
def local_engine(server: FakeOpenAIServer) -> Engine:
    from durable_agents.local import LocalAgent

    secrets = LocalAgent(secret_app.secret_agent, models=secret_app.MODELS)
    faults = LocalAgent(
        secret_app.fault_agent, models=secret_app.MODELS, model_unit_config={"max_attempts": secret_app.ATTEMPTS}
    )

    async def run_secrets(token: str) -> str:
        deps = secret_app.secret_deps(token)
        return _output(await secrets.run("go", deps=deps, model_settings=secret_app.secret_settings()))

    async def run_faults() -> str:
        return _output(await faults.run(secret_app.PLAIN))

    return Engine("local", run_secrets, run_faults)


def _dbos_engine(name: str, url: str, store: Callable[[], Awaitable[bytes]]) -> Iterator[Engine]:
    from dbos import DBOS

    from durable_agents.dbos import DBOSAgent

    DBOS.destroy(destroy_registry=True)
    secrets = DBOSAgent(secret_app.secret_agent, models=secret_app.MODELS)
    faults = DBOSAgent(
        secret_app.fault_agent,
        models=secret_app.MODELS,
        model_step_config={"retries_allowed": True, "max_attempts": secret_app.ATTEMPTS, "interval_seconds": 0.1},
    )
    DBOS(config={"name": "secrets", "system_database_url": url, "application_version": "1", "log_level": "WARNING"})
    DBOS.launch()

    async def run_secrets(token: str) -> str:
        deps = secret_app.secret_deps(token)
        return _output(await secrets.run("go", deps=deps, model_settings=secret_app.secret_settings()))

    async def run_faults() -> str:
        return _output(await faults.run(secret_app.PLAIN))

    yield Engine(name, run_secrets, run_faults, store)
    DBOS.destroy(destroy_registry=True)


@pytest.fixture(scope="module")
def dbos_engine(server: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("dbos") / "secrets.sqlite"

    async def store() -> bytes:
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]  # the file, its -wal and -shm
        return b"\n".join(p.read_bytes() for p in files)

    yield from _dbos_engine("dbos", f"sqlite:///{path}", store)


@pytest.fixture(scope="module")
def dbos_pg_engine(server: FakeOpenAIServer) -> Iterator[Engine]:
    cluster = PostgresCluster()
    if not cluster.available():
        pytest.fail(f"PostgreSQL server binaries not found in {cluster.bin_dir} (Debian package postgresql-15).")
    with cluster:

        async def store() -> bytes:
            return pg_dump(cluster, "secrets")

        yield from _dbos_engine("dbos-postgres", cluster.database_url("secrets"), store)


@pytest.fixture(scope="module")
async def temporal_engine(server: FakeOpenAIServer) -> AsyncIterator[Engine]:
    from durable_agents.temporal import DurableAgentsPlugin

    binary = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=binary, dev_server_log_level="error")
    async with env:
        client = await Client.connect(env.client.service_client.config.target_host, plugins=[DurableAgentsPlugin()])
        queue = f"secrets-{uuid.uuid4().hex[:8]}"
        ids: list[str] = []

        async def execute(workflow: Any, *args: Any) -> str:
            ids.append(f"secrets-{uuid.uuid4().hex[:12]}")
            return await client.execute_workflow(workflow, args=list(args), id=ids[-1], task_queue=queue)

        async def store() -> bytes:
            events = [e for i in ids async for e in client.get_workflow_handle(i).fetch_history_events()]
            return History(events=events).SerializeToString()

        async with Worker(
            client,
            task_queue=queue,
            workflows=[secret_app.SecretWorkflow, secret_app.FaultWorkflow],
            plugins=[DurableAgentsPlugin(secret_app.TEMPORAL_SECRET_AGENT, secret_app.TEMPORAL_FAULT_AGENT)],
        ):
            yield Engine(
                "temporal",
                lambda token: execute(secret_app.SecretWorkflow.run, "go", token),
                lambda: execute(secret_app.FaultWorkflow.run, secret_app.PLAIN),
                store,
            )


@pytest.fixture(scope="module")
def prefect_engine(server: FakeOpenAIServer, prefect_server: str) -> Iterator[Engine]:
    from durable_agents.prefect import PrefectAgent

    from ..conftest import _PG, _ROOT  # pyright: ignore[reportPrivateUsage]

    secrets = PrefectAgent(secret_app.secret_agent, models=secret_app.MODELS)
    faults = PrefectAgent(
        secret_app.fault_agent,
        models=secret_app.MODELS,
        model_task_config={"retries": secret_app.ATTEMPTS - 1, "retry_delay_seconds": 0.1},
    )

    async def run_secrets(token: str) -> str:
        deps = secret_app.secret_deps(token)
        return _output(await secrets.run("go", deps=deps, model_settings=secret_app.secret_settings()))

    async def run_faults() -> str:
        return _output(await faults.run(secret_app.PLAIN))

    async def store() -> bytes:
        results = b"\n".join(p.read_bytes() for p in _ROOT.rglob("*") if p.is_file() and "storage" in p.parts)
        return pg_dump(_PG, "prefect") + b"\n" + results

    yield Engine("prefect", run_secrets, run_faults, store)
    gc.collect()


ENGINES = [
    "local",
    pytest.param("dbos", marks=pytest.mark.dbos),
    pytest.param("dbos_pg", marks=[pytest.mark.dbos, pytest.mark.postgres]),
    pytest.param("temporal", marks=pytest.mark.temporal),
    pytest.param("prefect", marks=[pytest.mark.prefect, *PREFECT_WARNING_FILTERS]),
]


@pytest.fixture(params=ENGINES, scope="module")
def engine(request: pytest.FixtureRequest) -> Engine:
    """The engine of this parametrisation (module-scoped, so the tests run engine by engine: DBOS has one instance)."""
    return request.getfixturevalue(f"{request.param}_engine")


async def test_secret_deps_reach_the_tool_and_references_are_never_stored(
    engine: Engine, fresh: FakeOpenAIServer
) -> None:
    token = f"secretstr-value-{uuid.uuid4().hex}"
    assert await engine.run_secrets(token) == "done"
    ref_value, header_value = os.environ[secret_app.REF_ENV], os.environ[secret_app.HEADER_ENV]
    # SecretStr / SecretBytes arrive intact, not as '**********'; the reference is resolved in the tool's unit.
    assert {"token": token, "blob": token.encode(), "ref": ref_value} == secret_app.SEEN
    # The model settings' reference became the header's value in the model unit, for both requests.
    assert [h.get(secret_app.HEADER) for h in fresh.headers] == [header_value, header_value]
    if engine.store is None:
        return
    stored = searchable(await engine.store())
    assert secret_app.REF_ENV.encode() in stored  # the search reads the store: the references are in it
    assert ref_value.encode() not in stored
    assert header_value.encode() not in stored


async def test_a_persistent_503_is_sent_once_per_configured_attempt(engine: Engine, fresh: FakeOpenAIServer) -> None:
    fresh.faults.extend([503] * 10)
    with pytest.raises(Exception):  # each engine reports a failed run its own way
        await engine.run_faults()
    assert fresh.statuses == [503] * secret_app.ATTEMPTS


async def test_a_retried_model_unit_is_logged_once_per_failed_attempt_without_its_payload(
    engine: Engine, fresh: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    fresh.faults.append(503)
    with caplog.at_level(logging.INFO, logger="durable_agents"):
        assert await engine.run_faults() == "done"
    assert fresh.statuses == [503, 200]
    logger = f"durable_agents.{engine.name.split('-')[0]}"
    retried = [r for r in caplog.records if r.name == logger and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in retried] == [
        "Unit parity_faults.model failed on attempt 1 with ModelUnavailableError; the engine retries it "
        "if its config allows."
    ]
    assert not [r for r in caplog.records if r.name.startswith("durable_agents") and r.levelno >= logging.ERROR]


async def test_retry_after_holds_the_next_attempt_back(engine: Engine, fresh: FakeOpenAIServer) -> None:
    fresh.faults.append((503, {"Retry-After": "2"}))
    assert await engine.run_faults() == "done"
    assert fresh.statuses == [503, 200]
    assert fresh.times[1] - fresh.times[0] >= 2.0


@pytest.mark.prefect
@PREFECT_WARNING_FILTERS[0]
@PREFECT_WARNING_FILTERS[1]
@PREFECT_WARNING_FILTERS[2]
@PREFECT_WARNING_FILTERS[3]
async def test_prefect_stores_unit_results_as_plain_json(prefect_engine: Engine, fresh: FakeOpenAIServer) -> None:
    from ..conftest import _ROOT  # pyright: ignore[reportPrivateUsage]

    def stored() -> set[Path]:
        return {p for p in _ROOT.rglob("*") if p.is_file() and "storage" in p.parts}

    before = stored()
    assert await prefect_engine.run_secrets("token") == "done"
    new = stored() - before
    assert len(new) >= 3, sorted(p.name for p in stored())  # model, tool call, model
    serializers = [json.loads(p.read_bytes())["metadata"]["serializer"] for p in new]
    assert all(s["type"] == "json" and s["object_decoder"] is None for s in serializers), serializers
