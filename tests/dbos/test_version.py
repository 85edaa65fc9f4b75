"""DBOS application versions follow the agents: the same code gives the same version in every process, a changed
tool gives a new one, and a run pending on the old version stays there until it is forked onto the new one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbos import DBOS
from pydantic_ai import Agent

from durable_agents.dbos import DBOSAgent, application_version
from durable_agents.testing import CRASH_ENV, tool_loop_model
from durable_agents.testing._crash import CRASH_EXIT_CODE
from tests.dbos.deploy_app import write_app

pytestmark = pytest.mark.dbos

DRIVER = Path(__file__).with_name("deploy_app.py")
CALL = "deployed.toolset.agent.call/step"


def start(
    mode: str, app_dir: Path, url: str, work: Path, *extra: str, crash: str | None = None
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, "PYTHONHASHSEED")}
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.Popen(
        [sys.executable, str(DRIVER), mode, str(app_dir), url, str(work), *extra],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def finish(proc: subprocess.Popen[str], expect: int = 0) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == expect, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    return json.loads(out.splitlines()[-1]) if expect == 0 else {}


def versions(url: str, work: Path, *app_dirs: Path) -> list[str]:
    """The application version each app directory launches with, each in its own process (started together)."""
    procs = [start("version", app_dir, url, work) for app_dir in app_dirs]
    reports = [finish(p) for p in procs]
    for report in reports:
        assert report["version"] == report["expected"]  # `application_version()` is what DBOS launched with
    return [str(r["version"]) for r in reports]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.mark.slow
def test_the_same_agent_code_gets_the_same_version_in_every_process(
    sqlite_url: str, tmp_path: Path, work: Path
) -> None:
    app = write_app(tmp_path / "a")
    elsewhere = tmp_path / "b" / "deeper"
    shutil.copytree(app, elsewhere)  # the same code at another path
    # Each process has its own hash seed, so anything that depended on set order would differ.
    first, second, third = versions(sqlite_url, work, app, app, elsewhere)
    assert first == second == third


@pytest.mark.slow
def test_a_changed_tool_instructions_or_workflow_changes_the_version_an_unrelated_module_does_not(
    sqlite_url: str, tmp_path: Path, work: Path
) -> None:
    unrelated = write_app(tmp_path / "unrelated", imports="import helpers  # noqa: F401")
    (unrelated / "helpers.py").write_text(
        "from pydantic_ai import Agent\n\n\ndef shout(text: str) -> str:\n    return text.upper()\n\n\n"
        "summarizer = Agent('test', name='summarizer')  # a plain agent: not durable, no workflow\n"
    )
    base, tool, instructions, workflow, with_module = versions(
        sqlite_url,
        work,
        write_app(tmp_path / "base"),
        write_app(tmp_path / "tool", tool_result='f"R{i}"'),
        write_app(tmp_path / "instructions", instructions="Be thorough."),
        write_app(tmp_path / "workflow", workflow_result="swept"),
        unrelated,
    )
    assert len({base, tool, instructions, workflow}) == 4
    assert with_module == base


@pytest.mark.slow
def test_a_pending_run_stays_on_its_version_until_forked_onto_the_new_code(
    db_url: str, tmp_path: Path, work: Path
) -> None:
    old = write_app(tmp_path / "old")
    new = write_app(tmp_path / "new", tool_result='f"R{i}"')
    args = (db_url, work, "wf-deploy")

    finish(start("run", old, *args, crash=f"{CALL}@2"), expect=CRASH_EXIT_CODE)
    assert lines(work / "tool_calls") == ["0"]

    # The new code launches: the old run is not recovered onto the changed tool.
    status = finish(start("status", new, *args))
    assert status["status"] == "PENDING"
    assert status["app_version"] != status["version"]
    assert lines(work / "tool_calls") == ["0"]

    # The documented move: fork it onto this version after its last recorded step.
    moved = finish(start("fork", new, *args))
    assert moved["outputs"] == ["done: r0, R1, R2, R3"]  # tool call 1 recorded by the old code, 2-4 by the new
    assert lines(work / "tool_calls") == ["0", "1", "2", "3"]
    assert lines(work / "model_calls") == [f"model:{i}" for i in range(5)]
    assert finish(start("status", new, *args))["status"] == "CANCELLED"


@pytest.fixture
def fresh_dbos() -> Iterator[None]:
    DBOS.destroy(destroy_registry=True)
    yield
    DBOS.destroy(destroy_registry=True)


def _agent_and_launch(url: str, **config: object) -> None:
    agent = Agent(tool_loop_model(0), name="versioned")
    DBOSAgent(agent)
    DBOS(config={"name": "versioned-app", "system_database_url": url, "log_level": "WARNING", **config})  # type: ignore[typeddict-item]
    DBOS.launch()


@pytest.mark.usefixtures("fresh_dbos")
def test_the_default_version_is_the_agents_fingerprint(sqlite_url: str) -> None:
    _agent_and_launch(sqlite_url)
    assert DBOS.application_version == application_version("versioned-app")
    assert application_version("versioned-app") != application_version("another-app")


@pytest.mark.usefixtures("fresh_dbos")
def test_an_explicit_application_version_wins(sqlite_url: str) -> None:
    _agent_and_launch(sqlite_url, application_version="2026.12.1")
    assert DBOS.application_version == "2026.12.1"


@pytest.mark.usefixtures("fresh_dbos")
def test_patching_mode_keeps_its_single_version(sqlite_url: str) -> None:
    _agent_and_launch(sqlite_url, enable_patching=True)
    assert DBOS.application_version == "PATCHING_ENABLED"
