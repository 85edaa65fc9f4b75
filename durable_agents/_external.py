"""Waiting inside a durable run for an answer from outside: pydantic-ai's external events, on every engine.

pydantic-ai's `wait_for_external_event` (and the `RequestInput` capability built on it) hands a resume
token to an `ask` callback and waits until someone resolves the token. It asks the
`ExternalEventWaiter` installed for the run; every durable run installs a [`RunWaiter`][], which
splits a wait into three steps:

1. **Key.** The wait is numbered within its run: `<name>.<n>`, where `n` counts the run's waits. A
   replayed container numbers its waits the same way, so the key addresses the same wait.
2. **Ask.** The engine makes a token that addresses the run and the key
   ([`event_address`][durable_agents.DurableAgent.event_address]) and calls `ask(token)` in a unit whose
   result it records ([`ask_in_unit`][durable_agents.DurableAgent.ask_in_unit]): a replay neither asks
   again nor hands out a second token.
3. **Wait.** Unless `ask` answered at once, the container waits durably for the outcome
   ([`wait_for_event`][durable_agents.DurableAgent.wait_for_event]): a Temporal update, a DBOS message, a
   Prefect pause. The engine records the outcome, so a replay acts on the same answer.

From any process, [`resolve_external_event`][durable_agents.resolve_external_event] and
[`fail_external_event`][durable_agents.fail_external_event] read the engine from the token and deliver
the outcome through it.

A token is `da1.<engine>.<address>`: the address is the engine's JSON (workflow id, key, ...) in
unpadded URL-safe base64, so it survives copying into a URL, a Slack message or a database row.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import JsonValue
from pydantic_ai.external_events import ExternalEventError, ExternalEventWaiter
from pydantic_core import PydanticSerializationError, to_jsonable_python

from ._run import RunState
from .exceptions import ConfigurationError, EventTokenError

if TYPE_CHECKING:
    from ._agent import DurableAgent

__all__ = [
    "Ask",
    "EventOutcome",
    "RunWaiter",
    "decode_token",
    "encode_token",
    "fail_external_event",
    "resolve_external_event",
]

_LOG = logging.getLogger("durable_agents.external")

TOKEN_VERSION = "da1"

Ask = Callable[[str], Awaitable[JsonValue]]
"""pydantic-ai's `ask`, as a waiter receives it: called with the token, returns the answer or `None`."""

# Where each built-in engine delivers outcomes (module:function, see `Deliver`); imported on first use.
_DELIVERERS: dict[str, str] = {
    "local": "durable_agents.local._agent:deliver_event",
    "dbos": "durable_agents.dbos._external:deliver_event",
    "temporal": "durable_agents.temporal._external:deliver_event",
    "prefect": "durable_agents.prefect._external:deliver_event",
}


@dataclass(frozen=True)
class EventOutcome:
    """How a wait ended: with a JSON payload, or with a failure reason."""

    payload: JsonValue = None
    """The answer, when `error` is `None`."""
    error: str | None = None
    """Why the wait failed (resolved with a failure, or timed out)."""

    def to_json(self) -> str:
        """The outcome as it travels through an engine."""
        data: dict[str, JsonValue] = {"payload": self.payload} if self.error is None else {"error": self.error}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> EventOutcome:
        """Read back what `to_json` wrote."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise EventTokenError(f"An external event outcome must be a JSON object, got {text!r}.")
        if "error" in data:
            return cls(error=str(data["error"]))  # pyright: ignore[reportUnknownArgumentType]
        return cls(payload=data.get("payload"))  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]

    def result(self) -> JsonValue:
        """The payload, or `ExternalEventError` with the reason (what `wait_for_external_event` returns or raises)."""
        if self.error is not None:
            raise ExternalEventError(self.error)
        return self.payload


def timed_out(timeout: timedelta | None) -> EventOutcome:
    """The outcome of a wait whose timeout elapsed."""
    return EventOutcome(error=f"No answer arrived within {timeout}.")


def encode_token(engine: str, address: Mapping[str, str]) -> str:
    """The token for an engine and its address of a wait."""
    raw = json.dumps(dict(address), sort_keys=True, separators=(",", ":")).encode()
    return f"{TOKEN_VERSION}.{engine}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}"


def decode_token(token: str) -> tuple[str, dict[str, str]]:
    """The engine and the address a token names.

    Raises:
        EventTokenError: The token is not one durable_agents made.
    """
    version, _, rest = token.partition(".")
    engine, _, body = rest.partition(".")
    if version != TOKEN_VERSION or not engine or not body:
        raise EventTokenError(
            f"{token[:40]!r} is not an external event token of durable_agents (they start with "
            f"'{TOKEN_VERSION}.<engine>.'). Fix: pass the token the run handed to `ask`, unchanged."
        )
    try:
        address = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise EventTokenError(
            f"The external event token {token[:40]!r} is damaged ({exc}). Fix: pass it unchanged, as `ask` got it."
        ) from exc
    if not isinstance(address, dict) or not all(isinstance(v, str) for v in address.values()):  # pyright: ignore[reportUnknownVariableType]
        raise EventTokenError(f"The external event token {token[:40]!r} holds no address.")
    return engine, dict(address)  # pyright: ignore[reportUnknownArgumentType]


_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]+")


class RunWaiter(ExternalEventWaiter):
    """The waiter of one durable run: numbers its waits, asks in a unit, waits through the engine."""

    def __init__(self, agent: DurableAgent[Any, Any], state: RunState) -> None:
        self._agent = agent
        self._state = state

    async def wait(self, name: str, *, ask: Ask, timeout: timedelta | None) -> JsonValue:
        state = self._state
        state.waits += 1
        key = f"{_KEY_UNSAFE.sub('_', name)[:80]}.{state.waits}"
        token = encode_token(self._agent.engine, self._agent.event_address(key))
        answer = await self._agent.ask_in_unit(key, token, ask)
        if answer is not None:
            return answer
        outcome = await self._agent.wait_for_event(key, timeout)
        return outcome.result()


class Deliver(Protocol):
    """An engine's delivery of an outcome to the wait a token's address names.

    Returns `True` when the outcome was delivered, `False` when the wait already had one (the new one is
    ignored). Raises `EventTokenError` when no run of the engine has that address.
    """

    def __call__(
        self, address: Mapping[str, str], outcome: EventOutcome, options: Mapping[str, Any]
    ) -> Awaitable[bool]:
        """Deliver `outcome`; `options` are the keywords given to `resolve_external_event`."""
        ...


# Per engine, the options `configure(event_options=...)` set: used where a call passes none of its own.
_CONFIGURED_OPTIONS: dict[str, dict[str, Any]] = {}


def set_event_options(options: Mapping[str, Mapping[str, Any]]) -> None:
    """Set the options of `configure(event_options=...)`, checked; `{}` clears them."""
    unknown = sorted(set(options) - set(_DELIVERERS))
    if unknown:
        raise ConfigurationError(
            f"configure(event_options=...) names no engine of durable_agents: {', '.join(map(repr, unknown))}. "
            f"Fix: key the options by engine name ({', '.join(map(repr, _DELIVERERS))})."
        )
    for engine, engine_options in options.items():
        if not isinstance(engine_options, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigurationError(
                f"configure(event_options={{{engine!r}: ...}}) must map option names to values, e.g. "
                "{'temporal': {'client': client}}."
            )
    _CONFIGURED_OPTIONS.clear()
    _CONFIGURED_OPTIONS.update({engine: dict(engine_options) for engine, engine_options in options.items()})


async def _deliver(token: str, outcome: EventOutcome, options: Mapping[str, Any]) -> bool:
    engine, address = decode_token(token)
    path = _DELIVERERS.get(engine)
    if path is None:
        raise EventTokenError(f"The external event token names engine {engine!r}, which durable_agents does not know.")
    module, _, attr = path.partition(":")
    deliver: Deliver = getattr(importlib.import_module(module), attr)
    delivered = await deliver(address, outcome, {**_CONFIGURED_OPTIONS.get(engine, {}), **options})
    if not delivered:
        _LOG.warning("External event %s already had an answer; this one was ignored.", address.get("key", token[:40]))
    return delivered


async def resolve_external_event(token: str, payload: object, **options: Any) -> bool:
    """Answer a wait of a durable run, from any process: the run goes on with `payload`.

    The token is the one the run handed to `ask` (pydantic-ai's `wait_for_external_event` or
    `RequestInput`). `payload` is converted to JSON, as it arrives in the run.

    Args:
        token: The wait's token.
        payload: The answer; for `RequestInput`, a `DeferredToolResults` or its JSON form.
        **options: How to reach the engine, if this process has not set it up (defaults per engine:
            `configure(event_options=...)`).
            Temporal: `client=` (a Temporal `Client`), else `address=` and `namespace=` (default:
            `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, else `localhost:7233`, `default`);
            `update_timeout=` (default 10 s): when no worker takes the answer within it, it is sent as a
            signal that waits on the server for a worker.
            DBOS, when DBOS is not launched here: `system_database_url=` (the application's system
            database) or `client=` (a `DBOSClient`).
            Prefect: `api_url=` (the Prefect API URL), else `PREFECT_API_URL` from Prefect's settings.

    Returns:
        `True` if the answer was delivered; `False` if the wait already had an answer (this one is
        ignored, and a warning is logged on the `durable_agents` logger).

    Raises:
        EventTokenError: The token is not one of ours, or no run has that wait.
    """
    try:
        data = to_jsonable_python(payload)
    except PydanticSerializationError as exc:
        raise EventTokenError(f"The answer to an external event must be JSON data: {exc}") from exc
    return await _deliver(token, EventOutcome(payload=data), options)


async def fail_external_event(token: str, reason: str, **options: Any) -> bool:
    """End a wait of a durable run without an answer: the wait raises `ExternalEventError(reason)`.

    `RequestInput` then denies the pending tool calls with `reason` in the message to the model.
    Takes the same `options` and returns the same as
    [`resolve_external_event`][durable_agents.resolve_external_event].
    """
    return await _deliver(token, EventOutcome(error=reason), options)
