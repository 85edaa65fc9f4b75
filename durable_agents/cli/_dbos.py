"""Runs on DBOS, read from its system database with `DBOSClient` (read-only, except `resume`).

A `DBOSAgent`'s runs are the DBOS workflows named `<agent>.run`; its units are the steps of those workflows.
DBOS records neither a step's input nor its number of attempts, only its output (or error) and its times.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError, RunFinishedError, RunNotFoundError, RunStillActiveError
from ._runs import RunDetail, RunRow, UnitRow

__all__ = ["DBOSBackend", "system_database_url"]

_RUN_SUFFIX = ".run"
# Statuses DBOS resumes by itself or that are done: resuming them would be a no-op or a second executor.
_FINISHED = ("SUCCESS", "ERROR")
_WAITING = ("ENQUEUED", "DELAYED")


def system_database_url(db: str | None) -> str:
    """The system database URL of `--db`: a URL as given, a path as a SQLite file, by default the one `*.sqlite`.

    DBOS's own default is `sqlite:///<app name>.sqlite` in the application's working directory.
    """
    if db is not None and "://" in db:
        return db
    if db is None:
        found = sorted(Path.cwd().glob("*.sqlite"))
        if len(found) != 1:
            raise ConfigurationError(
                f"Which DBOS system database? {len(found)} *.sqlite files in {Path.cwd()}. Fix: pass "
                "`--db sqlite:///path/to/app.sqlite` (DBOS's default is `<app name>.sqlite` in the app's working "
                "directory) or `--db postgresql://user:password@host:5432/app_dbos_sys`."
            )
        path = found[0]
    else:
        path = Path(db)
    if not path.is_file():
        raise ConfigurationError(
            f"No DBOS system database at {path}. Fix: pass `--db` with the path of the SQLite file your DBOS app "
            "uses (its `system_database_url`), or a PostgreSQL URL."
        )
    return f"sqlite:///{path.resolve()}"


class DBOSBackend:
    """Reads and resumes `DBOSAgent` runs through a `DBOSClient` on the system database."""

    engine = "dbos"

    def __init__(self, url: str) -> None:
        self.url = url

    def _client(self) -> Any:
        from dbos import DBOSClient

        return DBOSClient(system_database_url=self.url, retry_connection_errors=False)

    async def list_runs(self, limit: int, agent: str | None) -> list[RunRow]:
        """The newest workflows named `<agent>.run`, newest first."""
        return await asyncio.to_thread(self._list, limit, agent)

    def _list(self, limit: int, agent: str | None) -> list[RunRow]:
        client = self._client()
        try:
            rows: list[RunRow] = []
            offset = 0
            page = max(limit * 4, 50)
            while len(rows) < limit:
                batch = client.list_workflows(
                    name=None if agent is None else f"{agent}{_RUN_SUFFIX}",
                    sort_desc=True,
                    limit=page,
                    offset=offset,
                    load_input=False,
                    load_output=False,
                )
                rows += [_run_row(w) for w in batch if _is_agent_run(w)]
                if len(batch) < page:
                    break
                offset += page
            return rows[:limit]
        finally:
            client.destroy()

    async def show_run(self, run_id: str) -> RunDetail:
        """The workflow and its steps."""
        return await asyncio.to_thread(self._show, run_id)

    def _show(self, run_id: str) -> RunDetail:
        client = self._client()
        try:
            status = self._status(client, run_id)
            steps = client.list_workflow_steps(run_id, load_output=True)
        finally:
            client.destroy()
        detail = RunDetail(_run_row(status))
        detail.facts = {
            "workflow": status.name,
            "application version": str(status.app_version),
            "executor": str(status.executor_id),
        }
        for step in steps:
            output = step["output"]
            error = step["error"]
            done = step["completed_at_epoch_ms"] is not None
            detail.units.append(
                UnitRow(
                    name=step["function_name"],
                    status="ERROR" if error is not None else "SUCCESS" if done else "PENDING",
                    start=_time(step["started_at_epoch_ms"]),
                    end=_time(step["completed_at_epoch_ms"]),
                    output_bytes=_size(output) if error is None and done else None,
                )
            )
        return detail

    async def resume_run(self, run_id: str, *, force: bool) -> str:
        """Enqueue the workflow again (`DBOSClient.resume_workflow`); a running DBOS app of its version runs it."""
        return await asyncio.to_thread(self._resume, run_id, force)

    def _resume(self, run_id: str, force: bool) -> str:
        client = self._client()
        try:
            status = self._status(client, run_id, resuming=True)
            if status.status in _FINISHED:
                raise RunFinishedError(
                    run_id,
                    f"its DBOS workflow is {status.status}, and DBOS does not run a finished workflow again",
                    "start a new run (pass `message_history=` to continue its conversation), or fork it with "
                    f"`dbos workflow fork {run_id}`",
                )
            if status.status in _WAITING or (status.status == "PENDING" and not force):
                raise RunStillActiveError(
                    run_id,
                    f"its DBOS workflow is {status.status}: "
                    + (
                        "a DBOS process will dequeue it"
                        if status.status in _WAITING
                        else "DBOS recovers a pending workflow when a process of its application version "
                        f"({status.app_version}) and executor ({status.executor_id}) starts"
                    ),
                    "start the application, or pass `--force` to enqueue it for any process of its version",
                )
            client.resume_workflow(run_id)
        finally:
            client.destroy()
        return (
            f"Workflow {run_id} was {status.status} and is enqueued again: a DBOS process of application version "
            f"{status.app_version} runs it from its last completed step."
        )

    @staticmethod
    def _status(client: Any, run_id: str, *, resuming: bool = False) -> Any:
        found = client.list_workflows(workflow_ids=[run_id], load_input=False, load_output=False)
        if not found:
            if resuming:
                raise RunNotFoundError(
                    run_id, "the DBOS system database has no workflow of this id", "check the id and `--db`"
                )
            raise ConfigurationError(
                f"The DBOS system database has no workflow {run_id!r}. Fix: take an id from `durable-agents runs "
                "list --engine dbos` and check that `--db` is the app's system database."
            )
        return found[0]


def _is_agent_run(status: Any) -> bool:
    # A DBOSAgent registers a plain function workflow named `<agent>.run`; a user's class methods have a class name.
    name: str = status.name
    return name.endswith(_RUN_SUFFIX) and len(name) > len(_RUN_SUFFIX) and status.class_name is None


def _run_row(status: Any) -> RunRow:
    return RunRow(
        run_id=status.workflow_id,
        agent=str(status.name).removesuffix(_RUN_SUFFIX),
        status=str(status.status),
        start=_time(status.created_at),
        end=_time(status.completed_at),
    )


def _time(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, UTC)


def _size(value: Any) -> int | None:
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, str):
        return len(value.encode())
    return None
