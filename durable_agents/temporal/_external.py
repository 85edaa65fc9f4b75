"""Waits for external events on Temporal: a workflow update delivers the outcome, `wait_condition` waits for it.

A `TemporalAgent` runs inside the user's workflow class, so the update handler is registered from workflow
code, at the first wait of a workflow run: one update, [`UPDATE_NAME`][], for every wait, with the wait's
slot (`<agent run number>/<key>`) and the outcome's JSON as arguments. Its validator rejects, before anything
is written to the history, an answer for a slot the run has not handed out (`EventTokenError` for the
resolver) and a second answer (`False`). An answer that arrives between the token and the wait is kept in the
run's state, so the wait finds it. Updates are in the history, so a replay acts on the same answer.

`ask` runs in a local activity (`<agent>.ask`), in the worker process that runs the workflow: it is a closure
of the run, so the workflow leaves it in a process-level registry under an id that the activity receives.
A replay returns the activity's recorded result without calling `ask`. When a wait ends, its slot is written
to the workflow's memo, so that a late answer to a workflow that has completed since is reported as a second
answer (`False`) rather than as a token of no run.

When no worker takes the update within `update_timeout=` (10 s by default: the workflow's workers are down, or
all busy), the answer is sent as the signal [`SIGNAL_NAME`][] instead, which the server keeps until a worker
runs the workflow: an answer sent during an outage is not lost, and the resolver does not hang. A signal cannot
be refused, so the resolver first looks for an earlier answer in the memo and the history (`False` if there is
one); the workflow keeps the first answer of its history and ignores the others.

A token addresses one workflow run (id and run id). Continue-as-new and reset start another run, so a
pending wait must not straddle them: a token of the earlier run is then refused with `EventTokenError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import JsonValue
from temporalio import activity, workflow
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from .._errors import error_outcome, rebuild_error
from .._external import Ask, EventOutcome, timed_out
from .._frames import ErrorOutcome
from .._policy import classify
from .._run import CURRENT_RUN
from ..exceptions import EventTokenError, UnitFailedError

__all__ = [
    "SIGNAL_NAME",
    "UPDATE_NAME",
    "ask_activity",
    "ask_in_workflow",
    "deliver_event",
    "event_address",
    "wait_in_workflow",
]

UPDATE_NAME = "durable_agents.event"
"""The workflow update that delivers the outcome of a wait (arguments: slot, outcome JSON)."""
SIGNAL_NAME = "durable_agents.event_signal"
"""The signal that delivers it when no worker takes the update in time (same arguments)."""
UPDATE_TIMEOUT = timedelta(seconds=10)
"""How long `resolve_external_event` waits for a worker to take the update before it signals."""

_LOG = logging.getLogger("durable_agents.temporal")
_MEMO_PREFIX = "durable_agents.event:"
_UNKNOWN = "UnknownExternalEvent"
_ANSWERED = "ExternalEventAnswered"

# `ask` is a user callback: short and idempotent (pydantic-ai's contract), retried like a tool unit.
_ASK_TIMEOUT = timedelta(minutes=1)
_ASK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=5)


@dataclass
class _Waits:
    """The waits of one workflow run: the slots it handed out and the outcomes that arrived."""

    slots: set[str] = field(default_factory=set[str])
    outcomes: dict[str, EventOutcome] = field(default_factory=dict[str, EventOutcome])

    def validate(self, slot: str, outcome: str) -> None:
        try:
            EventOutcome.from_json(outcome)
        except (ValueError, EventTokenError) as exc:
            raise ApplicationError(f"The outcome is not an outcome's JSON: {exc}", non_retryable=True) from exc
        if slot not in self.slots:
            raise ApplicationError(f"This run has no wait {slot!r}.", type=_UNKNOWN, non_retryable=True)
        if slot in self.outcomes:
            raise ApplicationError(f"Wait {slot!r} already ended.", type=_ANSWERED, non_retryable=True)

    def deliver(self, slot: str, outcome: str) -> None:
        self.outcomes.setdefault(slot, EventOutcome.from_json(outcome))

    def deliver_signalled(self, slot: str, outcome: str) -> None:
        """The signal's handler: it cannot refuse, so what the update's validator would refuse is ignored."""
        try:
            self.validate(slot, outcome)
        except ApplicationError as exc:
            workflow.logger.warning("An answer to wait %s was ignored: %s", slot, exc.message)
            return
        self.deliver(slot, outcome)

    def end(self, slot: str, outcome: EventOutcome) -> EventOutcome:
        """Keep `outcome` (unless one arrived first) and note in the memo that the wait is over."""
        kept = self.outcomes.setdefault(slot, outcome)
        workflow.upsert_memo({_MEMO_PREFIX + slot: True})
        return kept


# By the workflow run's event loop, which Temporal creates anew for every run and every replay (as for the run
# counters of `_agent.py`), so a replay starts with no waits and registers the handler again.
_WAITS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waits] = weakref.WeakKeyDictionary()

# The `ask` callbacks of the waits whose ask activity is running in this process, by workflow run id and slot.
_ASKS: dict[str, Ask] = {}


def _workflow_waits() -> _Waits:
    loop = asyncio.get_running_loop()
    waits = _WAITS.get(loop)
    if waits is None:
        waits = _WAITS[loop] = _Waits()
        workflow.set_update_handler(UPDATE_NAME, waits.deliver, validator=waits.validate)  # pyright: ignore[reportUnknownMemberType]
        workflow.set_signal_handler(SIGNAL_NAME, waits.deliver_signalled)  # pyright: ignore[reportUnknownMemberType]
    return waits


def _slot(key: str) -> str:
    state = CURRENT_RUN.get()
    if state is None:  # pragma: no cover - the waiter is installed with the run
        raise EventTokenError("A Temporal wait was started outside an agent run.")
    # The run key is `<workflow id>/<run id>/<n>`: the n-th agent run of the workflow run.
    return f"{state.run_key.rpartition('/')[2]}/{key}"


def event_address(key: str) -> dict[str, str]:
    """The address of wait `key` of the agent run in progress; registers the update handler at the first wait."""
    slot = _slot(key)
    _workflow_waits().slots.add(slot)
    info = workflow.info()
    return {"workflow": info.workflow_id, "run": info.run_id, "key": slot}


async def ask_in_workflow(agent_name: str, key: str, token: str, ask: Ask) -> JsonValue:
    """Call `ask(token)` in the agent's ask local activity; a replay returns its recorded answer."""
    slot = _slot(key)
    ask_id = f"{workflow.info().run_id}/{slot}"
    _ASKS[ask_id] = ask
    unit = f"{agent_name}.ask"
    try:
        text: str = await workflow.execute_local_activity(
            unit,
            args=[ask_id, token],
            result_type=str,
            summary=f"{agent_name}.ask/{key}",
            start_to_close_timeout=_ASK_TIMEOUT,
            retry_policy=_ASK_RETRY,
        )
    except ActivityError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):  # `ask` raised, for the last time: fail the run, not the task
            raise UnitFailedError(unit, cause.type or "Exception", cause.message) from exc
        raise
    finally:
        _ASKS.pop(ask_id, None)
    result = json.loads(text)
    if "error" in result:  # a fatal error, as a value: raised as the unit's would be
        raise rebuild_error(unit, ErrorOutcome(**result["error"]))
    answer: JsonValue = result["answer"]
    if answer is not None:
        _workflow_waits().end(slot, EventOutcome(payload=answer))
    return answer


async def wait_in_workflow(key: str, timeout: timedelta | None) -> EventOutcome:
    """Wait, holding no worker, until the update delivers wait `key`'s outcome or `timeout` elapses."""
    slot = _slot(key)
    waits = _workflow_waits()
    try:
        await workflow.wait_condition(lambda: slot in waits.outcomes, timeout=timeout, timeout_summary=slot)
    except TimeoutError:
        return waits.end(slot, timed_out(timeout))
    return waits.end(slot, waits.outcomes[slot])


class _Unrestricted(threading.local):
    """Lifts the workflow sandbox's restrictions in this thread while any `ask` runs.

    `ask` was defined in a workflow module, which the sandbox imported with restricted proxies of `pathlib`,
    `os`, `datetime`..., and it would refuse the I/O `ask` is there to do. The activity runs on the worker's event
    loop thread, never in a workflow's, so no workflow runs unrestricted; calls overlap on the loop, hence the count.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.stack = contextlib.ExitStack()

    def __enter__(self) -> None:
        if self.depth == 0:
            self.stack.enter_context(workflow.unsafe.sandbox_unrestricted())
        self.depth += 1

    def __exit__(self, *_: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.stack.close()


_UNRESTRICTED = _Unrestricted()


def ask_activity(
    agent_name: str, as_temporal_error: Callable[[Exception], Exception | None]
) -> Callable[[str, str], Awaitable[str]]:
    """The local activity of an agent that calls a wait's `ask`, found in this process's registry by id."""

    async def ask(ask_id: str, token: str) -> str:
        callback = _ASKS.get(ask_id)
        if callback is None:
            raise ApplicationError(
                f"No `ask` callback is registered for {ask_id!r} in this worker process.", non_retryable=True
            )
        try:
            with _UNRESTRICTED:
                answer = await callback(token)
        except Exception as exc:
            if classify(exc).fatal:  # never retried: returned as a value, like a unit's
                outcome = error_outcome(exc)
                return json.dumps(
                    {"error": {"error": outcome.error, "message": outcome.message, "attrs": outcome.attrs}}
                )
            error = as_temporal_error(exc)
            if error is not None:
                raise error from exc
            raise
        return json.dumps({"answer": answer})

    ask.__name__ = ask.__qualname__ = f"{agent_name.replace('.', '_')}_ask"
    return activity.defn(name=f"{agent_name}.ask")(ask)


async def _client(options: Mapping[str, Any]) -> Client:
    client = options.get("client")
    if isinstance(client, Client):
        return client
    if client is not None:
        raise EventTokenError(f"`client=` must be a temporalio `Client`, got {type(client).__name__}.")
    address = options.get("address") or os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")
    namespace = options.get("namespace") or os.environ.get("TEMPORAL_NAMESPACE", "default")
    return await Client.connect(address, namespace=namespace)


def _update_timeout(options: Mapping[str, Any]) -> timedelta:
    value = options.get("update_timeout", UPDATE_TIMEOUT)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = timedelta(seconds=value)
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise EventTokenError(f"`update_timeout=` must be a positive timedelta or number of seconds, got {value!r}.")
    return value


async def deliver_event(address: Mapping[str, str], outcome: EventOutcome, options: Mapping[str, Any]) -> bool:
    """Deliver an outcome to a wait of a workflow run, as a workflow update (see `resolve_external_event`).

    Options: `client=` (a connected temporalio `Client`), else `address=` and `namespace=`, else the
    `TEMPORAL_ADDRESS` and `TEMPORAL_NAMESPACE` environment variables (default `localhost:7233`, `default`);
    `update_timeout=` (a timedelta or seconds, default 10 s): how long to wait for a worker to take the update
    before sending the answer as a signal, which waits on the server for a worker.
    """
    workflow_id, run_id, slot = address.get("workflow", ""), address.get("run", ""), address.get("key", "")
    update_timeout = _update_timeout(options)
    client = await _client(options)
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    update_id = f"durable_agents.event/{slot}/{uuid.uuid4().hex}"
    try:
        update = await handle.start_update(  # pyright: ignore[reportUnknownMemberType]
            UPDATE_NAME,
            args=[slot, outcome.to_json()],
            id=update_id,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            rpc_timeout=update_timeout,  # ends the call on the server's side too, not only here
        )
        await update.result()
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        return await _signal(client, handle, slot, outcome, update_id)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == _ANSWERED:
            return False
        raise EventTokenError(
            f"Workflow {workflow_id!r} (run {run_id}) refused the answer to wait {slot!r}: {cause or exc}. Fix: "
            "pass the token unchanged, and check that the run it names is the one waiting."
        ) from exc
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        if await _ended_in(handle, slot):
            return False
        raise EventTokenError(
            f"No running workflow {workflow_id!r} (run {run_id}) waits for {slot!r}: {exc.message}. A token "
            "addresses one workflow run; it ended, continued as new or was reset, or never existed."
        ) from exc
    return True


async def _signal(
    client: Client, handle: WorkflowHandle[Any, Any], slot: str, outcome: EventOutcome, update_id: str
) -> bool:
    """No worker took the update in time: send the answer as a signal, unless the wait has one already.

    The update may still have been taken just after the call gave up: then its answer is in the history.
    """
    description = await handle.describe()
    first = await _first_answer_in_history(client, handle, slot)
    if first is not None:
        return first == update_id  # ours came first after all, or another answer did
    if description.status is not WorkflowExecutionStatus.RUNNING:
        if await _ended_in(handle, slot):
            return False
        raise EventTokenError(
            f"Workflow {handle.id!r} (run {handle.run_id}) is not running, and its wait {slot!r} never ended. A "
            "token addresses one workflow run; it ended, continued as new or was reset."
        )
    memo: Mapping[str, Any] = await description.memo()
    if memo.get(_MEMO_PREFIX + slot) is True:  # ended without an answer from outside: timed out, or `ask` answered
        return False
    await handle.signal(SIGNAL_NAME, args=[slot, outcome.to_json()])  # pyright: ignore[reportUnknownMemberType]
    _LOG.info("No worker took the answer to %s within the update timeout; it was sent as a signal.", slot)
    return True


async def _first_answer_in_history(client: Client, handle: WorkflowHandle[Any, Any], slot: str) -> str | None:
    """The first answer to `slot` in the workflow's history: an accepted update's id, `signal`, or `None`."""
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_signaled_event_attributes"):
            signalled = event.workflow_execution_signaled_event_attributes
            if signalled.signal_name != SIGNAL_NAME:
                continue
            payloads, answer = signalled.input.payloads, "signal"
        elif event.HasField("workflow_execution_update_accepted_event_attributes"):
            accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if accepted.input.name != UPDATE_NAME:
                continue
            payloads, answer = accepted.input.args.payloads, accepted.meta.update_id
        else:
            continue
        args = await client.data_converter.decode(payloads, [str, str])
        if args and args[0] == slot:
            return answer
    return None


async def _ended_in(handle: Any, slot: str) -> bool:
    """Whether a closed workflow run noted in its memo that wait `slot` had ended."""
    try:
        description = await handle.describe()
    except RPCError:
        return False
    memo: Mapping[str, Any] = await description.memo()
    return memo.get(_MEMO_PREFIX + slot) is True
