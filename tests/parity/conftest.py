"""One runner per engine for the parity tests: the same scenario agents, wrapped for local, DBOS, Temporal, Prefect.

A runner takes a scenario name, a prompt and a mode, and returns what the agent answered, or raises
[`RunFailed`][] with the error's type name (engines report a failed run differently: a Temporal workflow failure
carries the type name of the error that failed it, the in-process engines raise the error itself).

Mode `run` calls `run()` from outside the engine's containers; the other modes (`iter`, `run_stream`,
`run_stream_events`) call that method from the engine's own container code: a Temporal workflow, a user's
`@DBOS.workflow` or `@flow` (see `scenarios.in_container_code`).
"""

from __future__ import annotations

import gc
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.conftest import PREFECT_WARNING_FILTERS

from . import scenarios


class Runner(Protocol):
    """`run(scenario, prompt, mode="run")`: what `scenarios.in_container_code` returns for the scenario agent
    (`mode` "bad:CASE" runs it with a bad input of `scenarios.BAD_INPUTS`, started where a user would start it)."""

    def __call__(self, name: str, prompt: str, mode: str = "run") -> Awaitable[str]: ...


class RunFailed(Exception):
    """A run failed with an error of type `error_type`."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


EVENT_OPTIONS: dict[str, dict[str, Any]] = {}
"""Per engine, the options `resolve_external_event` needs in this process to reach it (Temporal: the client)."""

ENGINES = [
    "local",
    pytest.param("dbos", marks=pytest.mark.dbos),
    pytest.param("temporal", marks=pytest.mark.temporal),
    pytest.param("prefect", marks=[pytest.mark.prefect, *PREFECT_WARNING_FILTERS]),
]


@pytest.fixture(params=ENGINES)
def run(request: pytest.FixtureRequest) -> Runner:
    """Run a scenario on the engine of this parametrisation."""
    return _runner(request)


@pytest.fixture(params=ENGINES[1:])
def run_in_container(request: pytest.FixtureRequest) -> Runner:
    """Run a scenario on an engine that has containers of its own (not local: its container is `run()` itself)."""
    return _runner(request)


def _runner(request: pytest.FixtureRequest) -> Runner:
    scenarios.SEEN.clear()
    scenarios.CALLS.clear()
    scenarios.inbox.ASKED.clear()
    scenarios.data_analyst.TOOL_RUNS.clear()
    runner: Runner = request.getfixturevalue(f"{request.param}_runner")
    return runner


async def _in_process(call: Awaitable[str]) -> str:
    try:
        return str(await call)
    except Exception as exc:
        raise RunFailed(type(exc).__name__, str(exc)) from exc


@pytest.fixture(scope="module")
def local_runner() -> Runner:
    from durable_agents.local import LocalAgent

    agents = {
        name: LocalAgent(agent, event_stream_handler=scenarios.HANDLERS.get(name))
        for name, agent in scenarios.AGENTS.items()
    }

    async def run(name: str, prompt: str, mode: str = "run") -> str:
        return await _in_process(scenarios.in_container_code(agents[name], name, prompt, mode))

    return run


@pytest.fixture(scope="module")
def dbos_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    from dbos import DBOS

    from durable_agents.dbos import DBOSAgent

    DBOS.destroy(destroy_registry=True)
    agents = {
        name: DBOSAgent(agent, event_stream_handler=scenarios.HANDLERS.get(name))
        for name, agent in scenarios.AGENTS.items()
    }

    @DBOS.workflow(name="parity.container_code")
    async def container_code(name: str, prompt: str, mode: str) -> str:
        return await scenarios.in_container_code(agents[name], name, prompt, mode)

    url = f"sqlite:///{tmp_path_factory.mktemp('dbos') / 'parity.sqlite'}"
    DBOS(config={"name": "parity", "system_database_url": url, "application_version": "parity", "log_level": "WARNING"})
    DBOS.launch()

    async def run(name: str, prompt: str, mode: str = "run") -> str:
        if mode == "run" or mode.startswith("bad:"):
            return await _in_process(scenarios.in_container_code(agents[name], name, prompt, mode))
        return await _in_process(container_code(name, prompt, mode))

    yield run
    DBOS.destroy(destroy_registry=True)


@pytest.fixture(scope="module")
def prefect_runner(prefect_server: str) -> Iterator[Runner]:
    from prefect import flow

    from durable_agents.prefect import PrefectAgent

    agents = {
        name: PrefectAgent(agent, event_stream_handler=scenarios.HANDLERS.get(name))
        for name, agent in scenarios.AGENTS.items()
    }

    @flow(name="parity-container-code")
    async def container_code(name: str, prompt: str, mode: str) -> str:
        return await scenarios.in_container_code(agents[name], name, prompt, mode)

    async def run(name: str, prompt: str, mode: str = "run") -> str:
        if mode == "run" or mode.startswith("bad:"):
            return await _in_process(scenarios.in_container_code(agents[name], name, prompt, mode))
        return await _in_process(container_code(name, prompt, mode))

    yield run
    gc.collect()


@asynccontextmanager
async def temporal_worker(workflows: Sequence[type], agents: Iterable[Any]) -> AsyncIterator[tuple[Client, str]]:
    """A Temporal dev server, a client, and a worker of `workflows` and `agents` on a fresh task queue."""
    from durable_agents.temporal import DurableAgentsPlugin

    binary = shutil.which("temporal") or str(Path(__import__("sys").executable).parent / "temporal")
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=binary, dev_server_log_level="error")
    async with env:
        client = await Client.connect(env.client.service_client.config.target_host, plugins=[DurableAgentsPlugin()])
        queue = f"parity-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=queue, workflows=workflows, plugins=[DurableAgentsPlugin(*agents)]):
            yield client, queue


@pytest.fixture(scope="module")
async def temporal_runner() -> AsyncIterator[Runner]:
    from .temporal_app import TEMPORAL_AGENTS, ParityWorkflow

    async with temporal_worker([ParityWorkflow], TEMPORAL_AGENTS.values()) as (client, queue):
        EVENT_OPTIONS["temporal"] = {"client": client}

        async def run(name: str, prompt: str, mode: str = "run") -> str:
            try:
                return await client.execute_workflow(
                    ParityWorkflow.run,
                    args=[name, prompt, mode],
                    id=f"parity-{uuid.uuid4().hex[:12]}",
                    task_queue=queue,
                    # A workflow task that fails is retried forever: bound the run so such a test fails.
                    execution_timeout=timedelta(seconds=60),
                )
            except WorkflowFailureError as exc:
                cause = exc.cause
                if isinstance(cause, ApplicationError):
                    raise RunFailed(cause.type or "ApplicationError", cause.message) from exc
                raise

        yield run
        EVENT_OPTIONS.pop("temporal", None)
