"""History transport: the message history of a run crosses the unit boundary once, and the model always sees it exactly.

The peers put the whole message history into every model unit's input, so the engine's record of
a run grows with the square of its length. Here the container keeps a
[`MessageLog`][durable_agents._history.MessageLog] per run and sends, with each model request,
only the messages the unit side does not hold yet, plus the length and digest of the prefix it
expects the unit side to hold. The unit side keeps a process-wide
[`HistoryCache`][durable_agents._history.HistoryCache].

**Correct first.** The log compares what the run sends to the model with what it sent before by
the messages' encoded bytes, not by identity: a history processor that edits an old message in
place (redacting old tool results, say) changes its bytes, so the edited message and everything
after it is sent again, and the model sees exactly what the bare agent's model would see.

**Digests.** The digest is a hash chain over each message's JSON encoding; both sides compute it
from equal messages with the same encoder, so they agree without shipping bytes twice.

**Misses.** When the unit side does not hold the prefix (another worker, a restarted process, an
evicted entry), it looks in three places, cheapest first:

1. the container's live log, when the container runs in the same process (DBOS, Prefect, the
   local engine, a Temporal worker that runs both workflows and activities);
2. the engine's own record of the run's earlier model units
   ([`DurableAgent.recorded_exchanges`][durable_agents.DurableAgent.recorded_exchanges]): on
   Temporal the workflow history, which every worker of a fleet can read, so history stays linear
   on a fleet without routing units to a particular worker;
3. only then it answers *miss*, and the container resends the history in
   [`SegmentInput`][durable_agents._frames.SegmentInput]s that each fit the engine's payload limit.

Everything the container decides depends only on its own state and on recorded unit outcomes, so
replay stays deterministic.

**Memory.** The cache is bounded in bytes (the encoded size of the messages it holds), evicts the
least recently used run first, and forgets a run as soon as its container ends in this process.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import TypeAdapter
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import ModelRequestParameters

from ._frames import Input, ModelInput, Outcome, ResponseOutcome, SegmentInput, params_digest

__all__ = ["DEFAULT_MAX_BYTES", "HISTORY_CACHE", "HistoryCache", "MessageLog", "encode_message"]

MESSAGE_TA: TypeAdapter[ModelMessage] = TypeAdapter(ModelMessage)
_MESSAGES_TA: TypeAdapter[list[ModelMessage]] = TypeAdapter(list[ModelMessage])

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""The default byte budget of the unit-side cache (encoded message bytes, all runs together)."""


def encode_message(message: ModelMessage) -> bytes:
    """A message's JSON encoding, the unit of the digest chain."""
    return MESSAGE_TA.dump_json(message)


def _link(previous: bytes, chunk: bytes) -> bytes:
    return hashlib.blake2b(previous + chunk, digest_size=16).digest()


@dataclass
class _Chain:
    """Messages with their encoded sizes and the digest chain over their encodings."""

    messages: list[ModelMessage] = field(default_factory=list[ModelMessage])
    sizes: list[int] = field(default_factory=list[int])
    digests: list[bytes] = field(default_factory=lambda: [b""])
    params: tuple[str, ModelRequestParameters] | None = None
    """The last request parameters, with their digest (they rarely change within a run)."""
    params_nbytes: int = 0
    """The encoded size of the request parameters (tool definitions can outweigh a short conversation)."""
    nbytes: int = 0
    """The encoded size of every message held."""

    def truncate(self, length: int) -> None:
        self.nbytes -= sum(self.sizes[length:])
        del self.messages[length:]
        del self.sizes[length:]
        del self.digests[length + 1 :]

    def append(self, message: ModelMessage, chunk: bytes) -> None:
        self.messages.append(message)
        self.sizes.append(len(chunk))
        self.nbytes += len(chunk)
        self.digests.append(_link(self.digests[-1], chunk))

    def holds(self, base: int, digest: str) -> bool:
        return len(self.digests) > base and self.digests[base].hex() == digest


class MessageLog:
    """The container's record of what the unit side holds for one run."""

    def __init__(self) -> None:
        self._chain = _Chain()
        self._chunks: list[bytes] = []
        self._params: tuple[str, bytes] | None = None
        self._params_value: ModelRequestParameters | None = None
        self._params_copy: ModelRequestParameters | None = None

    def params(self, params: ModelRequestParameters) -> tuple[str, bool]:
        """Plan the request parameters: `(digest, send)`; `send` is false when the unit side holds them already.

        Parameters equal to a private copy of the ones sent last are not encoded again (they rarely change within
        a run); the copy is the run's own, so a tool definition edited in place is still seen as a change.
        """
        if self._params is not None and self._params_copy == params:
            return self._params[0], False
        digest, data = params_digest(params)
        self._params_copy = _PARAMS_TA.validate_json(data)  # a copy of the run's own, not sharing any object
        if self._params is not None and self._params[1] == data:
            return digest, False
        self._params = (digest, data)
        self._params_value = params
        return digest, True

    @property
    def last_params(self) -> ModelRequestParameters | None:
        """The request parameters sent last."""
        return self._params_value

    def delta(self, messages: Sequence[ModelMessage]) -> tuple[int, str, list[ModelMessage]]:
        """Plan a model request: `(base, digest, new messages)`, and record that the unit side will hold `messages`.

        Messages are compared by their encoding, not by identity, so an old message edited in place is sent
        again. The whole list is encoded in one call (a list's JSON is its items' JSON joined by commas), and each
        recorded message's bytes are compared with its slice of it.
        """
        chain = self._chain
        whole = _MESSAGES_TA.dump_json(list(messages))
        base, offset = 0, 1
        for chunk in self._chunks[: len(messages)]:
            end = offset + len(chunk)
            # A complete JSON object followed by a separator: this message encodes exactly as before.
            if whole[offset:end] != chunk or whole[end : end + 1] not in (b",", b"]"):
                break
            base += 1
            offset = end + 1
        digest = chain.digests[base].hex()
        chain.truncate(base)
        del self._chunks[base:]
        if len(messages) == base + 1:
            # One new message (a run's usual step): its encoding is the rest of the list's, without the bracket.
            self._record(messages[base], whole[offset:-1])
        else:
            for message in messages[base:]:
                self._record(message)
        return base, digest, list(messages[base:])

    def add_response(self, response: ModelResponse, chunk: bytes | None = None) -> None:
        """Record the model's response (the unit side records it too); `chunk` is its encoding, if known."""
        self._record(response, chunk)

    def _record(self, message: ModelMessage, chunk: bytes | None = None) -> None:
        if chunk is None:
            chunk = encode_message(message)
        self._chain.append(message, chunk)
        self._chunks.append(chunk)

    def segments(self, start: int, max_bytes: int | None) -> list[tuple[int, str, list[ModelMessage]]]:
        """The messages from `start` on as `(base, digest, messages)` pieces of at most `max_bytes` encoded bytes.

        One piece when `max_bytes` is `None`; a single message larger than `max_bytes` is a piece of its own (the
        engine's size check then fails it with a clear error).
        """
        pieces: list[tuple[int, str, list[ModelMessage]]] = []
        index = start
        while True:
            end, size = index, 0
            while end < len(self._chunks) and (
                max_bytes is None or end == index or size + len(self._chunks[end]) + 1 <= max_bytes
            ):
                size += len(self._chunks[end]) + 1
                end += 1
            pieces.append((index, self._chain.digests[index].hex(), self._chain.messages[index:end]))
            index = end
            if index >= len(self._chunks):
                return pieces

    def digest(self, length: int) -> str:
        """The chain digest of the first `length` messages."""
        return self._chain.digests[length].hex()

    @property
    def messages(self) -> list[ModelMessage]:
        """The messages the unit side is expected to hold, oldest first (a copy)."""
        return list(self._chain.messages)

    @property
    def length(self) -> int:
        """How many messages the unit side is expected to hold."""
        return len(self._chain.messages)

    def chunk_sizes(self) -> list[int]:
        """The encoded size of every message, oldest first."""
        return [len(c) for c in self._chunks]

    def chunks(self) -> list[bytes]:
        """The encoding of every message, oldest first (a copy)."""
        return list(self._chunks)


class HistoryCache:
    """The unit side's per-run message histories, bounded in bytes; the least recently used run goes first."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_runs: int = 10_000) -> None:
        self.max_bytes = max_bytes
        """Budget for the encoded size of every message held, over all runs."""
        self.max_runs = max_runs
        """At most this many runs are held (0 holds none: every request after a run's first misses)."""
        self._runs: OrderedDict[str, _Chain] = OrderedDict()
        self._held: dict[str, int] = {}
        self._shared_params: weakref.WeakValueDictionary[str, ModelRequestParameters] = weakref.WeakValueDictionary()
        self._bytes = 0
        self._lock = threading.Lock()
        self._live: weakref.WeakValueDictionary[str, MessageLog] = weakref.WeakValueDictionary()
        self.hits = 0
        """Requests answered from a held prefix."""
        self.misses = 0
        """Requests answered *miss* (the container resent the history)."""
        self.recoveries = 0
        """Requests whose prefix was rebuilt from the engine's record of the run."""
        self.share_live_logs = True
        """Whether units may read the history from a container in the same process (tests turn it off)."""
        self.read_engine_records = True
        """Whether units may rebuild a history from the engine's record of the run (tests turn it off)."""

    # ------------------------------------------------------------------ bookkeeping

    @property
    def nbytes(self) -> int:
        """Encoded bytes of every message held."""
        return self._bytes

    @property
    def runs(self) -> int:
        """How many runs are held."""
        return len(self._runs)

    def attach(self, run_key: str, log: MessageLog) -> None:
        """Let units in this process read a run's history from its container's log (held weakly)."""
        if self.share_live_logs:
            self._live[run_key] = log

    def forget(self, run_key: str) -> None:
        """Drop a run whose container ended in this process."""
        with self._lock:
            self._live.pop(run_key, None)
            self._runs.pop(run_key, None)
            self._bytes -= self._held.pop(run_key, 0)

    def clear(self, *, live: bool = True) -> None:
        """Forget every run, as a new process would; with `live`, also stop reading containers' logs.

        Tests use `clear()` to force a miss, and `clear(live=False)` for the in-process recovery path.
        """
        with self._lock:
            self._runs.clear()
            self._held.clear()
            self._bytes = 0
            if live:
                self._live.clear()

    def _store(self, run_key: str, chain: _Chain) -> None:
        if chain.params is not None:
            # Runs of one agent mostly send the same parameters: hold one copy, and count it per run anyway.
            digest, params = chain.params
            shared = self._shared_params.setdefault(digest, params)
            chain.params = (digest, shared)
            if not chain.params_nbytes:
                chain.params_nbytes = len(_PARAMS_TA.dump_json(shared))
        size = chain.nbytes + chain.params_nbytes
        self._bytes += size - self._held.get(run_key, 0)
        self._held[run_key] = size
        self._runs[run_key] = chain
        self._runs.move_to_end(run_key)
        while self._runs and (len(self._runs) > self.max_runs or self._bytes > self.max_bytes):
            evicted, _ = self._runs.popitem(last=False)
            self._bytes -= self._held.pop(evicted, 0)

    def _from_live(self, run_key: str, base: int, digest: str) -> _Chain | None:
        # The container is suspended while it waits for this unit, so its log does not change meanwhile.
        log = self._live.get(run_key) if self.share_live_logs else None
        if log is None:
            return None
        live = log._chain  # pyright: ignore[reportPrivateUsage]
        if not live.holds(base, digest):
            return None
        chain = _Chain(live.messages[:base], live.sizes[:base], live.digests[: base + 1])
        if log._params is not None and log.last_params is not None:  # pyright: ignore[reportPrivateUsage]
            chain.params = (log._params[0], log.last_params)  # pyright: ignore[reportPrivateUsage]
        return chain

    # ------------------------------------------------------------------ the unit side's answers

    def resolve(
        self,
        run_key: str,
        base: int,
        digest: str,
        messages: Sequence[ModelMessage],
        *,
        params_digest: str | None = None,
        params: ModelRequestParameters | None = None,
        records: Sequence[tuple[Input, Outcome | None]] | None = None,
    ) -> tuple[list[ModelMessage], ModelRequestParameters | None] | None:
        """Extend a held prefix with `messages`: the full history and request parameters, or `None` on a miss.

        `params` is `None` when the container expects this side to hold the parameters with `params_digest`;
        `params_digest=None` (history segments) needs no parameters. `records` is the engine's record of the
        run's earlier model units, the last place to look for the prefix (see
        [`rebuild`][durable_agents._history.HistoryCache.rebuild]).
        """
        rebuilt = None if records is None else self.rebuild(run_key, records)
        with self._lock:
            old = self._runs.get(run_key)
            chain = old
            if base == 0:
                chain = _Chain(params=old.params if old is not None else None)
            elif chain is None or not chain.holds(base, digest):
                chain = self._from_live(run_key, base, digest)
                if chain is None and rebuilt is not None and rebuilt.holds(base, digest):
                    chain = rebuilt
                    self.recoveries += 1
                if chain is None:
                    return None
            if params is None and params_digest is not None:
                if chain.params is None or chain.params[0] != params_digest:
                    found = self._from_live(run_key, base, digest) or rebuilt
                    if found is None or found.params is None or found.params[0] != params_digest:
                        return None
                    chain.params = found.params
                params = chain.params[1]
            elif params is not None and params_digest is not None:
                if chain.params is None or chain.params[0] != params_digest:
                    chain.params_nbytes = 0
                chain.params = (params_digest, params)
            if base:
                self.hits += 1
            chain.truncate(base)
            for message in messages:
                chain.append(message, encode_message(message))
            self._store(run_key, chain)
            return list(chain.messages), params

    def add_response(self, run_key: str, base_length: int, response: ModelResponse, chunk: bytes) -> None:
        """Record the response (encoded as `chunk`) to a request whose history had `base_length` messages."""
        with self._lock:
            chain = self._runs.get(run_key)
            if chain is None or len(chain.messages) < base_length:
                return
            chain.truncate(base_length)
            chain.append(response, chunk)
            self._store(run_key, chain)

    def rebuild(self, run_key: str, exchanges: Sequence[tuple[Input, Outcome | None]]) -> _Chain | None:
        """Rebuild a run's history from the engine's record of its earlier model units, oldest first.

        Inputs of other runs (several agent runs in one workflow) are skipped; an input whose prefix does not
        match what came before breaks the chain until a full resend (`base == 0`) starts it again.
        """
        chain: _Chain | None = None
        for unit_input, outcome in exchanges:
            if not isinstance(unit_input, ModelInput | SegmentInput) or unit_input.run != run_key:
                continue
            if unit_input.base == 0:
                chain = _Chain(params=chain.params if chain is not None else None)
            elif chain is None or not chain.holds(unit_input.base, unit_input.digest):
                chain = None
                continue
            chain.truncate(unit_input.base)
            for message in unit_input.messages:
                chain.append(message, encode_message(message))
            if isinstance(unit_input, ModelInput) and unit_input.params is not None:
                chain.params = (unit_input.params_digest, unit_input.params)
            if isinstance(outcome, ResponseOutcome):
                chain.append(outcome.response, encode_message(outcome.response))
        return chain

    def note_miss(self) -> None:
        """Count a request answered *miss*."""
        with self._lock:
            self.misses += 1


_PARAMS_TA: TypeAdapter[ModelRequestParameters] = TypeAdapter(ModelRequestParameters)

HISTORY_CACHE = HistoryCache()
"""The process-wide cache on the unit side."""
