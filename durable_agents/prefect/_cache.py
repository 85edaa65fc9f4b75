"""Cache keys of Prefect units: what makes a completed unit "the same" as one about to run.

A Prefect task is skipped when a completed result with the same cache key exists in result
storage. The key must therefore be:

- **stable across a resume of the same flow run**: re-running the flow body after a crash (a
  Prefect retry, or `PrefectAgent.resume(flow_run_id)`) rebuilds every message, with fresh
  timestamps, so the key cannot hash the raw payload;
- **distinct between runs** unless the user asks otherwise: two flow runs must never share a tool
  result by accident (a key derived only from the inputs collides between runs that differ only in
  deps or metadata held outside the payload, and one derived from raw payloads never hits at all).

Both policies here hash the *projection* of a unit's input
([`unit_fingerprint`][durable_agents.prefect._cache.unit_fingerprint]): the unit's label, the
payload's frame (see `_frames.py`) with volatile fields removed, and an occurrence number that
tells apart identical calls within one run. Removed fields, and only those:

| where | dropped |
|---|---|
| frame | `v`, `run` (the run key), `base`, `digest`, `params` (`params_digest` stays), `messages` (see below) |
| run-context snapshot (`ctx`) | `run_id`, `conversation_id`, `tool_call_id`, `deadline` |
| every message | `timestamp`, `run_id`, `conversation_id`, `provider_response_id` |
| every message part | `timestamp`, `tool_call_id`, `id` |

Tool arguments, deps, run metadata, model settings and request parameters are kept whole, so any
difference there changes the key. A model request's payload carries only the messages that are new
since the previous request (and deps only when it streams); its fingerprint hashes the projection of
the run's *whole* history, its deps and its metadata instead, so equal fingerprints mean equal
conversations in equally configured runs.

- [`RUN_SCOPED`][durable_agents.prefect.RUN_SCOPED] (the default): `hash(flow run id, fingerprint)`.
- [`CROSS_RUN`][durable_agents.prefect.CROSS_RUN] (opt-in): `hash(fingerprint)`, shared by every run.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pydantic_core
from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext

from .._units import UnitKind

__all__ = [
    "CROSS_RUN",
    "FINGERPRINT_PARAMETER",
    "RUN_SCOPED",
    "CrossRunCache",
    "RunHistory",
    "RunScopedCache",
    "UnitOccurrences",
    "project_message",
    "project_payload",
    "unit_fingerprint",
]


@dataclass(frozen=True)
class RunHistory:
    """What a model unit's fingerprint hashes besides its payload: the run's whole history and its deps."""

    messages: Sequence[bytes]
    """Every message of the run so far, as encoded in the payloads."""
    deps: bytes
    """The run's encoded deps."""
    metadata: bytes = b"null"
    """The run's `metadata`, as JSON."""


FINGERPRINT_PARAMETER = "fingerprint"
"""The name of the task parameter that carries a unit's fingerprint to the cache policy."""

_FRAME_DROP = frozenset({"v", "run", "base", "digest", "params", "messages"})
# The deadline is wall-clock time from the start of the flow body: a resume starts it again.
_CTX_DROP = frozenset({"run_id", "conversation_id", "tool_call_id", "deadline"})
_MESSAGE_DROP = frozenset({"timestamp", "run_id", "conversation_id", "provider_response_id"})
_PART_DROP = frozenset({"timestamp", "tool_call_id", "id"})


def project_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message (as JSON data) without its volatile fields; parts keep everything but theirs."""
    out = {k: v for k, v in message.items() if k not in _MESSAGE_DROP}
    parts = message.get("parts")
    if isinstance(parts, list):
        out["parts"] = [
            {k: v for k, v in cast(Mapping[str, Any], part).items() if k not in _PART_DROP}
            if isinstance(part, Mapping)
            else part
            for part in cast(list[Any], parts)
        ]
    return out


def _message_digest(chunk: bytes, memo: MutableMapping[bytes, str] | None) -> str:
    # A run's history is re-hashed at every model request, so the run keeps a memo (see `UnitOccurrences`). It is
    # the run's, not the process's: a process-wide cache keyed by the chunks would keep every run's messages alive.
    if memo is not None and (digest := memo.get(chunk)) is not None:
        return digest
    projected = project_message(cast(Mapping[str, Any], pydantic_core.from_json(chunk)))
    digest = hashlib.blake2b(pydantic_core.to_json(projected), digest_size=16).hexdigest()
    if memo is not None:
        memo[chunk] = digest
    return digest


def _project_frame(frame: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in frame.items() if k not in _FRAME_DROP}
    ctx = frame.get("ctx")
    if isinstance(ctx, Mapping):
        out["ctx"] = {k: v for k, v in cast(Mapping[str, Any], ctx).items() if k not in _CTX_DROP}
    return out


def project_payload(
    kind: UnitKind,
    payload: bytes,
    history: RunHistory | None = None,
    *,
    digests: MutableMapping[bytes, str] | None = None,
) -> dict[str, Any]:
    """The stable projection of a unit input (see the module docs for what is dropped).

    Args:
        kind: The unit's kind.
        payload: The encoded unit input.
        history: For model units, the run's whole message history and deps; the payload itself only holds
            the messages that are new (and deps only when it streams). `None` projects the payload alone.
        digests: A memo of message digests by encoded message, kept by the caller for as long as the run.
    """
    frame = cast(Mapping[str, Any], pydantic_core.from_json(payload))
    projected: dict[str, Any] = {"frame": _project_frame(frame)}
    if kind is UnitKind.MODEL:
        if history is not None:
            messages: Sequence[bytes] = history.messages
            projected["deps"] = history.deps.decode()
            projected["metadata"] = history.metadata.decode()
        else:
            messages = [pydantic_core.to_json(m) for m in cast(list[Any], frame.get("messages") or [])]
        projected["messages"] = [_message_digest(c, digests) for c in messages]
    return projected


def unit_fingerprint(
    label: str,
    kind: UnitKind,
    payload: bytes,
    occurrence: int,
    history: RunHistory | None = None,
    *,
    digests: MutableMapping[bytes, str] | None = None,
) -> str:
    """The fingerprint of one unit execution: label, projected input and occurrence number, hashed.

    Args:
        label: The unit's label (`<unit name>` or `<unit name>/<tool>`).
        kind: The unit's kind.
        payload: The encoded unit input.
        occurrence: How many units of this run had the same label and projection before this one (0, 1, ...).
        history: For model units, the run's whole history and deps; see
            [`project_payload`][durable_agents.prefect._cache.project_payload].
        digests: A memo of message digests by encoded message, kept by the caller for as long as the run.
    """
    data = {
        "label": label,
        "input": project_payload(kind, payload, history, digests=digests),
        "occurrence": occurrence,
    }
    return hashlib.sha256(pydantic_core.to_json(data)).hexdigest()


class UnitOccurrences:
    """Counts units by label and projection within one agent run, so identical calls get distinct keys.

    It also keeps the digests of the run's messages, which every model request of the run hashes again; they go
    when the run's `UnitOccurrences` does.
    """

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()
        self._digests: dict[bytes, str] = {}

    def next(self, label: str, kind: UnitKind, payload: bytes, history: RunHistory | None = None) -> str:
        """The fingerprint of the next unit with this input."""
        base = unit_fingerprint(label, kind, payload, 0, history, digests=self._digests)
        occurrence = self._seen[base]
        self._seen[base] += 1
        if occurrence == 0:
            return base
        return unit_fingerprint(label, kind, payload, occurrence, history, digests=self._digests)


def _fingerprint(inputs: Mapping[str, Any]) -> str | None:
    value = inputs.get(FINGERPRINT_PARAMETER)
    return value if isinstance(value, str) else None


@dataclass
class RunScopedCache(CachePolicy):
    """Reuse a unit's result only within the same flow run: resuming it skips completed units."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        """`hash(flow run id, unit fingerprint)`; `None` (no caching) outside a flow run."""
        fingerprint = _fingerprint(inputs)
        flow_run_id = task_ctx.task_run.flow_run_id
        if fingerprint is None or flow_run_id is None:
            return None
        return "durable-agents-run-" + hashlib.sha256(f"{flow_run_id}:{fingerprint}".encode()).hexdigest()


@dataclass
class CrossRunCache(CachePolicy):
    """Reuse a unit's result in any run whose unit has the same fingerprint (opt-in)."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        """`hash(unit fingerprint)`."""
        fingerprint = _fingerprint(inputs)
        if fingerprint is None:
            return None
        return "durable-agents-inputs-" + fingerprint


RUN_SCOPED = RunScopedCache()
"""The default cache policy of every unit: results are reused only by the same flow run."""
CROSS_RUN = CrossRunCache()
"""Opt-in cache policy: results are reused by any run whose unit has the same projected input."""
