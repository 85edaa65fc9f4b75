"""The `durable-agents` command: `runs list`, `runs show RUN` and `runs resume RUN` on DBOS, Temporal and Prefect.

`runs answer`, `runs approve` and `runs deny` answer a run's wait for an external event (`RequestInput`,
`wait_for_external_event`): the token names the engine and the run, so they need no `--engine`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from cyclopts import App, Parameter
from pydantic import TypeAdapter
from pydantic_ai.messages import AgentStreamEvent
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .. import __version__
from .._engine import get_engine
from .._external import decode_token, fail_external_event, resolve_external_event
from ..exceptions import DurableAgentsError, EngineNotAvailableError, EventTokenError
from ._events import follow_events, records_of
from ._runs import Backend, RunDetail, RunRow

__all__ = ["app", "main"]

Engine = Literal["dbos", "temporal", "prefect"]
Format = Literal["table", "json"]

app = App(
    name="durable-agents",
    help="Operate the runs of durable pydantic-ai agents on DBOS, Temporal and Prefect.",
    version=__version__,
)
runs = App(name="runs", help="List, show, resume and answer the runs of durable agents.")
app.command(runs)


@Parameter(name="*")
@dataclass
class EngineOptions:
    """Where the runs are: the engine, and how to reach it."""

    engine: Annotated[Engine, Parameter(name=["--engine", "-e"], env_var="DURABLE_AGENTS_ENGINE")]
    """The engine the agents run on."""
    db: Annotated[str | None, Parameter(env_var="DBOS_SYSTEM_DATABASE_URL")] = None
    """DBOS: the system database, a SQLite file path or a `sqlite:///` / `postgresql://` URL (default: the one
    `*.sqlite` file of the working directory)."""
    address: Annotated[str, Parameter(env_var="TEMPORAL_ADDRESS")] = "localhost:7233"
    """Temporal: the frontend address of the server."""
    namespace: Annotated[str, Parameter(env_var="TEMPORAL_NAMESPACE")] = "default"
    """Temporal: the namespace."""
    app: str | None = None
    """Prefect, `resume` only: the PrefectAgent that runs the flow, as `module:variable`. Prefect's server is the
    one of PREFECT_API_URL."""

    def backend(self) -> Backend:
        """The engine module that reads this engine; `EngineNotAvailableError` when its extra is not installed."""
        info = get_engine(self.engine)
        if not info.installed:
            raise EngineNotAvailableError(
                f"Reading {self.engine} runs needs the {self.engine} client in this environment. "
                f"Fix: {info.install_hint}."
            )
        if self.engine == "dbos":
            from ._dbos import DBOSBackend, system_database_url

            return DBOSBackend(system_database_url(self.db))
        if self.engine == "temporal":
            from ._temporal import TemporalBackend

            return TemporalBackend(self.address, self.namespace)
        from ._prefect import PrefectBackend

        return PrefectBackend(self.app)


@runs.command(name="list")
async def list_runs(
    *,
    options: EngineOptions,
    agent: str | None = None,
    limit: int = 20,
    format: Format = "table",
) -> list[RunRow]:
    """List the most recent runs of durable agents, newest first.

    Args:
        options: Engine and connection.
        agent: Only the runs of this agent (its `name`).
        limit: At most this many runs.
        format: `table` for people, `json` for scripts.
    """
    console = app.console
    backend = options.backend()
    with console.status(f"Reading runs from {backend.engine}..."):
        rows = await backend.list_runs(limit, agent)
    if format == "json":
        console.print_json(json.dumps([r.as_json() for r in rows]))
    else:
        console.print(_runs_table(rows, backend.engine))
    return rows


@runs.command(name="show")
async def show_run(
    run: str,
    /,
    *,
    options: EngineOptions,
    format: Format = "table",
) -> RunDetail:
    """Show one run and its units: status, attempts, durations, input and output sizes.

    Args:
        run: The run's id: DBOS workflow id, Temporal workflow id, Prefect flow run id.
        options: Engine and connection.
        format: `table` for people, `json` for scripts.
    """
    console = app.console
    backend = options.backend()
    with console.status(f"Reading run {run} from {backend.engine}..."):
        detail = await backend.show_run(run)
    if format == "json":
        console.print_json(json.dumps(detail.as_json()))
    else:
        console.print(_run_table(detail, backend.engine))
        console.print(_units_table(detail))
    return detail


@runs.command(name="resume")
async def resume_run(run: str, /, *, options: EngineOptions, force: bool = False) -> str:
    """Resume a run that its engine does not resume by itself.

    DBOS: a cancelled run, or one out of recovery attempts. Prefect: a crashed, failed or stale run.
    Temporal continues every run on its own.

    Args:
        run: The run's id: DBOS workflow id, Prefect flow run id.
        options: Engine and connection (Prefect also needs `--app`).
        force: DBOS: enqueue a PENDING run too; Prefect: resume a RUNNING run without waiting for its heartbeat
            to go stale. Only when you know its process is gone.
    """
    console = app.console
    backend = options.backend()
    with console.status(f"Resuming run {run} on {backend.engine}..."):
        message = await backend.resume_run(run, force=force)
    console.print(message, markup=False, highlight=False)
    return message


@runs.command(name="events")
async def run_events(
    run: str,
    /,
    *,
    options: EngineOptions,
    after: int = -1,
    follow: bool = False,
    idle: float = 2.0,
    format: Format = "table",
) -> int:
    """Print a run's agent events (tool calls, results, model output), from the run's `live_events=` record.

    Only runs whose wrapper was built with `live_events=` publish events. Temporal: a worker of the run's task
    queue must be up to answer the query that reads them.

    Args:
        run: The run's id: DBOS workflow id, Temporal workflow id, Prefect flow run id (or its `run_id=`).
        options: Engine and connection.
        after: Print only events after this offset (what a reconnecting reader saw last).
        follow: Keep printing events as they come, until the run ends.
        idle: Without `--follow`, stop once no event came for this many seconds.
        format: `table` prints one line per event; `json` prints each event's JSON.

    Returns:
        How many events were printed.
    """
    console = app.console
    backend = options.backend()  # checks the engine's extra is installed
    engine_options: dict[str, Any] = {"address": options.address, "namespace": options.namespace}
    if backend.engine == "dbos":
        from ._dbos import system_database_url

        engine_options["system_database_url"] = system_database_url(options.db)
    records = records_of(backend.engine, run, **engine_options)
    printed = 0
    async for offset, event in follow_events(records, after=after, idle_seconds=None if follow else idle):
        if format == "json":
            console.print_json(json.dumps({"offset": offset, "event": _EVENT_ADAPTER.dump_python(event, mode="json")}))
        else:
            console.print(*_cells(f"{offset:>5}", _describe(event)))
        printed += 1
    if format == "table":
        console.print(f"{printed} events", style="dim")
    return printed


_EVENT_ADAPTER: TypeAdapter[AgentStreamEvent] = TypeAdapter(AgentStreamEvent)


def _describe(event: AgentStreamEvent) -> str:
    """One line for an event: its kind and what it carries, shortened."""
    kind = event.event_kind
    detail: Any = None
    for attribute in ("part", "delta", "result", "tool_call_id"):
        detail = getattr(event, attribute, None)
        if detail is not None:
            break
    text = f"{kind}: {detail!r}" if detail is not None else kind
    return text if len(text) <= 160 else text[:157] + "..."


@Parameter(name="*")
@dataclass
class AnswerOptions:
    """How to reach the engine the token names (the engine itself is read from the token)."""

    db: Annotated[str | None, Parameter(env_var="DBOS_SYSTEM_DATABASE_URL")] = None
    """DBOS: the system database, a SQLite file path or a `sqlite:///` / `postgresql://` URL (default: the one
    `*.sqlite` file of the working directory)."""
    address: Annotated[str, Parameter(env_var="TEMPORAL_ADDRESS")] = "localhost:7233"
    """Temporal: the frontend address of the server."""
    namespace: Annotated[str, Parameter(env_var="TEMPORAL_NAMESPACE")] = "default"
    """Temporal: the namespace. Prefect's server is the one of PREFECT_API_URL."""

    async def engine_options(self, token: str) -> dict[str, Any]:
        """The keywords `resolve_external_event` needs for the token's engine."""
        engine, _ = decode_token(token)
        if engine == "dbos":
            from ._dbos import system_database_url

            return {"system_database_url": system_database_url(self.db)}
        if engine == "temporal":
            from temporalio.client import Client

            return {"client": await Client.connect(self.address, namespace=self.namespace)}
        return {}


async def _answer(token: str, options: AnswerOptions, payload: Any = None, reason: str | None = None) -> bool:
    console = app.console
    engine_options = await options.engine_options(token)
    with console.status("Delivering the answer..."):
        if reason is None:
            delivered = await resolve_external_event(token, payload, **engine_options)
        else:
            delivered = await fail_external_event(token, reason, **engine_options)
    if delivered:
        console.print("Delivered: the run goes on.", highlight=False)
    else:
        console.print("[yellow]Ignored[/yellow]: the wait already had an answer.", highlight=False)
    return delivered


@runs.command(name="answer")
async def answer_wait(token: str, payload: str, /, *, options: AnswerOptions | None = None) -> bool:
    """Answer a run's wait with a JSON payload (for `RequestInput`: the JSON form of `DeferredToolResults`).

    Args:
        token: The token the run handed to `ask`.
        payload: The answer, as JSON.
        options: How to reach the engine.
    """
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise EventTokenError(
            f"The payload is not JSON ({exc}). Fix: quote it, e.g. '{{\"approvals\": {{}}}}'."
        ) from exc
    return await _answer(token, options or AnswerOptions(), payload=data)


@runs.command(name="approve")
async def approve_calls(
    token: str,
    /,
    *,
    call: Annotated[list[str] | None, Parameter(consume_multiple=True)] = None,
    deny: Annotated[list[str] | None, Parameter(consume_multiple=True)] = None,
    reason: str = "The tool call was denied.",
    options: AnswerOptions | None = None,
) -> bool:
    """Answer a `RequestInput` wait: approve the tool calls `--call ID...`, deny `--deny ID...`.

    Args:
        token: The token the run handed to `ask`.
        call: The tool call ids to approve.
        deny: The tool call ids to deny.
        reason: What the model is told about denied calls.
        options: How to reach the engine.
    """
    approvals: dict[str, Any] = dict.fromkeys(call or [], True)
    approvals.update({tool_call_id: {"kind": "tool-denied", "message": reason} for tool_call_id in deny or []})
    return await _answer(token, options or AnswerOptions(), payload={"approvals": approvals})


@runs.command(name="deny")
async def deny_wait(token: str, /, *, reason: str, options: AnswerOptions | None = None) -> bool:
    """End a run's wait without an answer; `RequestInput` denies every pending call with `reason`.

    Args:
        token: The token the run handed to `ask`.
        reason: Why; the run sees it (and tells the model).
        options: How to reach the engine.
    """
    return await _answer(token, options or AnswerOptions(), reason=reason)


def main() -> None:
    """Entry point of the `durable-agents` console script: a durable_agents error is printed, exit status 1."""
    status: int | str | None = 0
    try:
        app(result_action="return_none")
    except DurableAgentsError as exc:
        Console(stderr=True).print(f"[red]{type(exc).__name__}[/red]: {escape(exc.message)}", highlight=False)
        status = 1
    except SystemExit as exc:  # cyclopts' own exits: --help, --version, a usage error
        status = exc.code
    _exit(status)


def _exit(status: int | str | None) -> None:
    """Leave with `status`; once a temporalio client was used, without the interpreter's finalization.

    temporalio's Rust threads can abort a process at interpreter exit (exit code 134) after all its work
    succeeded (temporalio sdk-python#300): a script that ran `runs approve` would see a failure for an answer
    that was delivered. Output is flushed first; nothing else of ours needs the finalization.
    """
    if "temporalio.client" not in sys.modules:
        sys.exit(status)
    if isinstance(status, str):
        print(status, file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(status or 0)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.2f}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value} B" if value < 1024 else f"{value / 1024:.1f} KiB"


def _runs_table(rows: list[RunRow], engine: str) -> Table:
    table = Table(title=f"Runs of durable agents on {engine}", title_justify="left")
    for column in ("run", "agent", "status", "start (UTC)", "duration"):
        table.add_column(column, no_wrap=column != "agent", justify="right" if column == "duration" else "left")
    for row in rows:
        start = row.start.strftime("%Y-%m-%d %H:%M:%S") if row.start else "-"
        table.add_row(*_cells(row.run_id, row.agent, row.status, start, _seconds(row.duration)))
    if not rows:
        table.caption = "no runs of durable agents found"
    return table


def _run_table(detail: RunDetail, engine: str) -> Table:
    table = Table(title=f"Run {detail.run.run_id} on {engine}", title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    run = detail.run
    facts = {
        "agent": run.agent or "-",
        "status": run.status,
        "start (UTC)": run.start.isoformat(sep=" ", timespec="seconds") if run.start else "-",
        "duration": _seconds(run.duration),
        **detail.facts,
    }
    for key, value in facts.items():
        table.add_row(*_cells(key, value))
    return table


def _units_table(detail: RunDetail) -> Table:
    table = Table(title=f"Units ({len(detail.units)})", title_justify="left")
    for column in ("#", "unit", "kind", "status", "attempts", "duration", "input", "output"):
        numeric = column in ("#", "attempts", "duration", "input", "output")
        # The unit's name folds on a narrow terminal; numbers and statuses stay whole.
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=column != "unit",
            overflow="fold",
            min_width=12 if column == "unit" else None,
        )
    for number, unit in enumerate(detail.units, 1):
        table.add_row(
            *_cells(
                str(number),
                unit.name,
                unit.kind,
                unit.status,
                "-" if unit.attempts is None else str(unit.attempts),
                _seconds(unit.duration),
                _bytes(unit.input_bytes),
                _bytes(unit.output_bytes),
            )
        )
    return table


def _cells(*values: str) -> list[Text]:
    # Names and statuses are data, not rich markup: `[dbos]` or a tool named `a[b]` print as they are.
    return [Text(v) for v in values]
