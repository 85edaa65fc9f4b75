"""Answers to local waits from other processes: a loopback listener in the process whose runs wait.

A local run waits in its own process (a future). So that `resolve_external_event` works from another
process too (a CLI, a web app, a test driver), the first wait of a process starts a small TCP listener on
127.0.0.1, on a free port, in a daemon thread. A local token names that port and the process id:

- in the process itself, the outcome is handed to the wait directly;
- from another process, it is sent to the port as one JSON line, and the listener answers with one line:
  delivered, ignored (the wait already had an outcome), or an error (no such wait).

Nothing is written to disk and nothing survives the process: the local engine is not durable. The run key
in the token (`<agent>:<uuid4 hex>`) is what a sender must know; the listener only accepts loopback
connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socketserver
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .._external import EventOutcome
from ..exceptions import EventTokenError

__all__ = ["inbox_address", "is_this_process", "send_to_inbox"]

_PROTOCOL = "durable-agents-local-inbox/1"
_HOST = "127.0.0.1"
_MAX_LINE = 64 * 1024 * 1024  # an answer is a DeferredToolResults or a small JSON value; this bounds a bad sender
_TIMEOUT = 30.0

Deliver = Callable[[str, str, EventOutcome], bool]
"""Delivers an outcome to the wait (run key, wait key) of this process; raises `EventTokenError` if none."""


class _Handler(socketserver.StreamRequestHandler):
    """One connection: one request line in, one reply line out."""

    def handle(self) -> None:
        self.connection.settimeout(_TIMEOUT)
        try:
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                raise EventTokenError(f"The answer is larger than {_MAX_LINE} bytes.")
            request = json.loads(line)
            if not isinstance(request, dict) or request.get("protocol") != _PROTOCOL:  # pyright: ignore[reportUnknownMemberType]
                raise EventTokenError("The request is not one of durable_agents' local inbox.")
            outcome = EventOutcome.from_json(str(request["outcome"]))  # pyright: ignore[reportUnknownArgumentType]
            assert isinstance(self.server, _Server)
            delivered = self.server.deliver(str(request["run"]), str(request["key"]), outcome)  # pyright: ignore[reportUnknownArgumentType]
            reply: dict[str, Any] = {"protocol": _PROTOCOL, "delivered": delivered}
        except EventTokenError as exc:
            reply = {"protocol": _PROTOCOL, "error": exc.message}
        except (ValueError, KeyError, OSError) as exc:
            reply = {"protocol": _PROTOCOL, "error": f"The request could not be read: {exc!r}."}
        with contextlib.suppress(OSError):  # the sender went away
            self.wfile.write(json.dumps(reply).encode() + b"\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, deliver: Deliver) -> None:
        super().__init__((_HOST, 0), _Handler)
        self.deliver = deliver


_LOCK = threading.Lock()
_INBOX: dict[int, int] = {}  # this process's id -> its listener's port (a forked child starts its own)


def inbox_address(deliver: Deliver) -> dict[str, str]:
    """The part of a local token that reaches this process: its id and its listener's port (started once)."""
    pid = os.getpid()
    with _LOCK:
        if pid not in _INBOX:
            server = _Server(deliver)
            thread = threading.Thread(target=server.serve_forever, name="durable-agents-local-inbox", daemon=True)
            thread.start()
            _INBOX[pid] = server.server_address[1]
        return {"pid": str(pid), "port": str(_INBOX[pid])}


def is_this_process(address: Mapping[str, str]) -> bool:
    """Whether a token's address names a wait of this process (tokens without a port always do)."""
    return "port" not in address or address.get("pid") == str(os.getpid())


async def send_to_inbox(address: Mapping[str, str], outcome: EventOutcome) -> bool:
    """Send an outcome to the process that runs the local wait `address` names; `True` if delivered there."""
    gone = EventTokenError(
        f"No process answers for the local run of this token (process {address.get('pid', '?')}, port "
        f"{address.get('port', '?')}): it has ended, and local runs are not durable. Fix: answer while the run "
        "waits, or run the agent on a durable engine (DBOS, Temporal, Prefect) to answer after a restart."
    )
    request = {"protocol": _PROTOCOL, "run": address.get("run", ""), "key": address.get("key", "")}
    request["outcome"] = outcome.to_json()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(_HOST, int(address["port"])), _TIMEOUT)
    except (OSError, ValueError, TimeoutError) as exc:
        raise gone from exc
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), _TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise gone from exc
    finally:
        writer.close()
    try:
        reply = json.loads(line)
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or reply.get("protocol") != _PROTOCOL:  # pyright: ignore[reportUnknownMemberType]
        raise gone  # another program took the port
    if "error" in reply:
        raise EventTokenError(str(reply["error"]))  # pyright: ignore[reportUnknownArgumentType]
    return bool(reply.get("delivered"))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
