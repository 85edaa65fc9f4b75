"""External events on DBOS: a wait is `DBOS.recv` on a topic of the run's workflow, an answer `DBOS.send`.

A wait's topic is `da.<agent>.<n>.<key>` (`n` numbers the agent runs of the workflow, `key` the run's waits),
and the token's address is `{"workflow": <workflow id>, "topic": <topic>, "key": <key>}`. The workflow keeps the wait's
state in a DBOS workflow event under the topic's name: `"waiting"` from just before `ask` runs (so a token
`ask` hands out always names a wait that exists), `"done"` once the wait has its outcome (received, timed
out, or answered by `ask` itself). [`deliver_event`][durable_agents.dbos._external.deliver_event] reads that
state before it sends, which is how a second answer is recognised and ignored.

`DBOS.recv` records the message it received (or its timeout) in the workflow's journal, so a recovering
workflow acts on the same outcome; a message sent while no process runs the workflow waits in the system
database until a recovered workflow receives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from dbos import DBOS, DBOSClient
from dbos import _dbos as dbos_internals  # pyright: ignore[reportPrivateUsage]

from .._external import EventOutcome
from ..exceptions import ConfigurationError, EventTokenError

__all__ = ["DONE", "WAITING", "dbos_launched", "deliver_event", "state_key"]

WAITING = "waiting"
"""The wait's state from just before `ask` runs until it has an outcome."""
DONE = "done"
"""The wait's state once it has its outcome: any later answer is ignored."""

_ACTIVE = ("PENDING", "ENQUEUED", "DELAYED")


def state_key(topic: str) -> str:
    """The name of the DBOS workflow event that holds the state of the wait on `topic`."""
    return f"{topic}.state"


async def deliver_event(address: Mapping[str, str], outcome: EventOutcome, options: Mapping[str, Any]) -> bool:
    """Send an outcome to a wait of a DBOS run (see `durable_agents.resolve_external_event`).

    Reaches DBOS through `client=` (a `DBOSClient`), else a client on `system_database_url=`, else the DBOS
    launched in this process.
    """
    workflow_id, topic = address.get("workflow"), address.get("topic")
    if not workflow_id or not topic:
        raise EventTokenError("The DBOS external event token holds no workflow id or topic.")
    client: DBOSClient | None = options.get("client")
    url: str | None = options.get("system_database_url")
    if client is None and url is not None:
        made = await asyncio.to_thread(DBOSClient, system_database_url=url)
        try:
            return await _deliver(made, workflow_id, topic, outcome)
        finally:
            await asyncio.to_thread(made.destroy)
    if client is None and not dbos_launched():
        raise ConfigurationError(
            "To answer a DBOS run's external event, this process needs the DBOS system database. Fix: pass "
            "`system_database_url=` (the URL the application's DBOS uses) or `client=` (a `DBOSClient`) to "
            "`resolve_external_event` / `fail_external_event`, or launch DBOS in this process."
        )
    return await _deliver(client, workflow_id, topic, outcome)


async def _deliver(client: DBOSClient | None, workflow_id: str, topic: str, outcome: EventOutcome) -> bool:
    if client is None:
        found = await DBOS.list_workflows_async(workflow_ids=[workflow_id])
        state = await DBOS.get_event_async(workflow_id, state_key(topic), 0)
    else:
        found = await client.list_workflows_async(workflow_ids=[workflow_id])
        state = await client.get_event_async(workflow_id, state_key(topic), 0)
    if not found:
        raise EventTokenError(
            f"No DBOS workflow {workflow_id!r} exists in this system database. Fix: answer with the system "
            "database of the application that ran the agent (`system_database_url=`)."
        )
    if state == DONE:
        return False
    if state != WAITING:
        raise EventTokenError(f"DBOS workflow {workflow_id!r} never began the wait this token names ({topic!r}).")
    if found[0].status not in _ACTIVE:
        raise EventTokenError(
            f"DBOS workflow {workflow_id!r} ended ({found[0].status}) while it waited for this event, so nothing "
            "will receive the answer."
        )
    # The idempotency key keeps one message per wait when answers race each other: the first one is received.
    if client is None:
        await DBOS.send_async(workflow_id, outcome.to_json(), topic, idempotency_key=topic)
    else:
        await client.send_async(workflow_id, outcome.to_json(), topic, idempotency_key=topic)
    return True


def dbos_launched() -> bool:
    """Whether DBOS is launched in this process."""
    # DBOS has no public "is launched" query; its global instance knows.
    instance = dbos_internals._dbos_global_instance  # pyright: ignore[reportPrivateUsage]
    return instance is not None and bool(instance._launched)  # pyright: ignore[reportPrivateUsage]
