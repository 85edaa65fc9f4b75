"""Sending only what is new: the message history of a run crosses the unit boundary once.

The peers put the whole message history into every model unit's input, so the engine's record
of a run grows with the square of its length. Here the container keeps a
[`MessageLog`][durable_agents._history.MessageLog] per run and sends, with each model request,
only the messages the unit side has not seen, plus the length and digest of the prefix it
expects the unit side to hold. The unit side keeps a bounded, process-wide
[`HistoryCache`][durable_agents._history.HistoryCache].

The digest is a hash chain over the exact bytes each message was encoded as (by the container
for requests, by the unit for responses), so both sides agree without re-encoding. When the unit
side does not hold a matching prefix (another worker, a restarted process, an evicted entry) it
answers *miss*, and the container resends the whole history once. When the container runs in
the same process as the unit (DBOS, Prefect, the local engine, and a Temporal worker that runs
both the workflow and its activities), the unit side reads a missing prefix from the
container's live log instead, so recovering a run in a new process costs no extra unit. The container's choice of what
to send depends only on its own state, so replay stays deterministic.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from pydantic_ai.messages import ModelMessage, ModelResponse

from ._codec import MESSAGE_TA

__all__ = ["HISTORY_CACHE", "HistoryCache", "MessageLog"]


def _link(previous: bytes, chunk: bytes) -> bytes:
    return hashlib.blake2b(previous + chunk, digest_size=16).digest()


@dataclass
class _Chain:
    messages: list[ModelMessage] = field(default_factory=list[ModelMessage])
    chunks: list[bytes] = field(default_factory=list[bytes])
    digests: list[bytes] = field(default_factory=lambda: [b""])
    params: tuple[str, Any] | None = None
    """The last request parameters received, with their digest (they rarely change within a run)."""

    def truncate(self, length: int) -> None:
        del self.messages[length:]
        del self.chunks[length:]
        del self.digests[length + 1 :]

    def append(self, message: ModelMessage, chunk: bytes) -> None:
        self.messages.append(message)
        self.chunks.append(chunk)
        self.digests.append(_link(self.digests[-1], chunk))


class MessageLog:
    """The container's view of what the unit side holds for one run."""

    def __init__(self) -> None:
        self._chain = _Chain()
        self._params: tuple[str, bytes] | None = None

    def params(self, encoded: bytes) -> tuple[str, bool]:
        """Plan the request parameters: `(digest, send)`; `send` is false when the unit side already holds them."""
        if self._params is not None and self._params[1] == encoded:
            return self._params[0], False
        digest = hashlib.blake2b(encoded, digest_size=16).hexdigest()
        self._params = (digest, encoded)
        return digest, True

    def delta(self, messages: Sequence[ModelMessage]) -> tuple[int, str, list[bytes]]:
        """Plan a model request: `(base, digest, new chunks)`, and record that the unit side will hold `messages`."""
        chain = self._chain
        base = 0
        limit = min(len(messages), len(chain.messages))
        while base < limit and (messages[base] is chain.messages[base] or messages[base] == chain.messages[base]):
            base += 1
        digest = chain.digests[base].hex()
        chain.truncate(base)
        new_chunks: list[bytes] = []
        for message in messages[base:]:
            chunk = MESSAGE_TA.dump_json(message)
            chain.append(message, chunk)
            new_chunks.append(chunk)
        return base, digest, new_chunks

    def all_chunks(self) -> list[bytes]:
        """Every message the unit side should hold, for a resend after a miss."""
        return list(self._chain.chunks)

    def add_response(self, response: ModelResponse, chunk: bytes) -> None:
        """Record the model's response, encoded by the unit as `chunk`."""
        self._chain.append(response, chunk)

    @property
    def messages(self) -> list[ModelMessage]:
        """The messages the unit side is expected to hold, oldest first (a copy)."""
        return list(self._chain.messages)

    @property
    def length(self) -> int:
        """How many messages the unit side is expected to hold."""
        return len(self._chain.messages)


class HistoryCache:
    """The unit side's per-run message histories, bounded by run count (least recently used goes first)."""

    def __init__(self, max_runs: int = 256) -> None:
        self.max_runs = max_runs
        self._runs: OrderedDict[str, _Chain] = OrderedDict()
        self._lock = threading.Lock()
        self._live: weakref.WeakValueDictionary[str, MessageLog] = weakref.WeakValueDictionary()
        self.hits = 0
        self.misses = 0
        self.share_live_logs = True
        """Whether units may read the history from a container in the same process (tests turn it off)."""

    def attach(self, run_key: str, log: MessageLog) -> None:
        """Let units in this process read a run's history from its container's log (held weakly)."""
        if self.share_live_logs:
            self._live[run_key] = log

    def _from_live(self, run_key: str, base: int, digest: str) -> _Chain | None:
        # The container is suspended while it waits for this unit, so its log does not change meanwhile.
        log = self._live.get(run_key)
        if log is None:
            return None
        live = log._chain  # pyright: ignore[reportPrivateUsage]
        if len(live.digests) <= base or live.digests[base].hex() != digest:
            return None
        chain = _Chain(live.messages[:base], live.chunks[:base], live.digests[: base + 1])
        if log._params is not None:  # pyright: ignore[reportPrivateUsage]
            params_digest, encoded = log._params  # pyright: ignore[reportPrivateUsage]
            chain.params = (params_digest, pydantic_core.from_json(encoded))
        return chain

    def resolve(
        self, run_key: str, base: int, digest: str, chunks: Sequence[bytes], *, params_digest: str, params: Any
    ) -> tuple[list[ModelMessage], Any] | None:
        """The full history and request parameters for a request, or `None` on a miss.

        `params` is `None` when the container expects this side to hold the parameters with `params_digest`.
        On a miss the container resends everything.
        """
        with self._lock:
            chain = self._runs.get(run_key)
            if base == 0:
                chain = _Chain()
            elif chain is None or len(chain.digests) <= base or chain.digests[base].hex() != digest:
                chain = self._from_live(run_key, base, digest)
                if chain is None:
                    self.misses += 1
                    return None
            if params is None:
                if chain.params is None or chain.params[0] != params_digest:
                    self.misses += 1
                    return None
                params = chain.params[1]
            if base:
                self.hits += 1
            chain.params = (params_digest, params)
            chain.truncate(base)
            for chunk in chunks:
                chain.append(MESSAGE_TA.validate_json(chunk), chunk)
            self._runs[run_key] = chain
            self._runs.move_to_end(run_key)
            while len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)
            return list(chain.messages), params

    def add_response(self, run_key: str, base_length: int, response: ModelResponse, chunk: bytes) -> None:
        """Record the response to a request whose history had `base_length` messages."""
        with self._lock:
            chain = self._runs.get(run_key)
            if chain is None or len(chain.messages) < base_length:
                return
            chain.truncate(base_length)
            chain.append(response, chunk)

    def clear(self, *, live: bool = True) -> None:
        """Forget every run, as a new process would; with `live`, also stop reading containers' logs.

        Tests use `clear()` to force the resend path, and `clear(live=False)` for the in-process recovery path.
        """
        with self._lock:
            self._runs.clear()
            if live:
                self._live.clear()


HISTORY_CACHE = HistoryCache()
"""The process-wide cache on the unit side."""
