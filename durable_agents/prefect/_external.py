"""External events on Prefect: a wait's outcome is a flow run input, written once by whoever comes first.

A wait of a `PrefectAgent` run is addressed by its flow run id, its agent run key and its key (see
`durable_agents._external`). Two flow run inputs (Prefect's key/value store of a flow run, kept on the server)
belong to it:

- the *wait* input, written by the task that calls `ask` before it calls it: it says the token is real;
- the *outcome* input, written by `resolve_external_event` / `fail_external_event` from any process, or by the
  waiting flow itself when the timeout elapses. The server refuses a second input of the same key
  (`409 Conflict`), so the first outcome wins and every later one is reported as ignored.

The flow body polls for the outcome input while it waits; the flow run stays `RUNNING` and its heartbeat goes
on. An outcome written while the flow's process is down stays on the server: `PrefectAgent.resume()` (or
`durable-agents runs resume`) runs the flow body again, its units (and the `ask` task) return their stored
results, and the wait reads the outcome at once.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from .._external import EventOutcome
from ..exceptions import EventTokenError

__all__ = ["deliver_event", "input_key", "read_input", "write_input"]


def input_key(run: str, key: str, kind: str) -> str:
    """The flow run input key of wait `key` of agent run `run`: `kind` is `wait` or `event`.

    Prefect allows only letters, digits and dashes in input keys; a digest of the run key and the wait key fits.
    """
    digest = hashlib.sha256(f"{run}\n{key}".encode()).hexdigest()[:40]
    return f"durable-agents-{kind}-{digest}"


async def read_input(client: PrefectClient, flow_run_id: UUID, key: str) -> str | None:
    """The value of a flow run input, `None` if there is none."""
    try:
        return await client.read_flow_run_input(flow_run_id, key)
    except (ObjectNotFound, httpx.HTTPStatusError) as exc:
        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code != 404:
            raise
        return None


async def write_input(client: PrefectClient, flow_run_id: UUID, key: str, value: str) -> bool:
    """Write a flow run input unless one of that key exists: `True` if this call wrote it."""
    try:
        await client.create_flow_run_input(flow_run_id, key, value, sender="durable-agents")
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 409:
            return False
        raise
    return True


@contextlib.asynccontextmanager
async def _client(options: Mapping[str, Any]) -> AsyncGenerator[PrefectClient]:
    unknown = set(options) - {"api_url"}
    if unknown:
        raise EventTokenError(
            f"Prefect takes no option {', '.join(sorted(unknown))} to deliver an external event. Fix: pass only "
            "`api_url=` (the Prefect API URL), or nothing to use PREFECT_API_URL."
        )
    api_url = options.get("api_url")
    if api_url is None:
        async with get_client() as client:
            yield client
        return
    with temporary_settings(updates={PREFECT_API_URL: str(api_url)}):
        async with get_client() as client:
            yield client


async def deliver_event(address: Mapping[str, str], outcome: EventOutcome, options: Mapping[str, Any]) -> bool:
    """Write the outcome of a wait of a `PrefectAgent` run (see `durable_agents.resolve_external_event`).

    Returns `False` when the wait has an outcome already (answered, failed or timed out). Raises
    `EventTokenError` when the server has no such flow run or wait, or when the run finished without it.
    """
    run, key = address.get("run", ""), address.get("key", "")
    async with _client(options) as client:
        try:
            flow_run_id = UUID(address.get("flow_run", ""))
        except ValueError:
            raise EventTokenError("The Prefect external event token names no flow run.") from None
        try:
            flow_run = await client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            raise EventTokenError(
                f"The Prefect server at {client.api_url} has no flow run {flow_run_id}. Fix: check that "
                "PREFECT_API_URL (or `api_url=`) points at the server that runs the agent."
            ) from None
        if await read_input(client, flow_run_id, input_key(run, key, "event")) is not None:
            return False
        if await read_input(client, flow_run_id, input_key(run, key, "wait")) is None:
            raise EventTokenError(
                f"Flow run {flow_run_id} never waited for event {key!r}. Fix: pass the token its `ask` got, unchanged."
            )
        state = flow_run.state
        if state is not None and state.type in (StateType.COMPLETED, StateType.CANCELLED, StateType.CANCELLING):
            raise EventTokenError(
                f"Flow run {flow_run_id} is {state.type.value} and no longer waits for event {key!r}. "
                "Fix: answer while the run waits; start a new run to ask again."
            )
        return await write_input(client, flow_run_id, input_key(run, key, "event"), outcome.to_json())
