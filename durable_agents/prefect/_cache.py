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
payload's frame (see `_frames.py`) with volatile fields removed, the run's scope
([`RunScope`][durable_agents.prefect._cache.RunScope]: canonical deps, metadata, model identity) and an
occurrence number that tells apart identical calls within one run. Removed fields, and only those:

| where | dropped |
|---|---|
| frame | `v`, `run` (run key), `base`, `digest`, `params` (not `params_digest`), `messages`, `trace`, `deps` (below) |
| run-context snapshot (`ctx`) | `run_id`, `conversation_id`, `tool_call_id`, `deadline` |
| every message | `timestamp`, `run_id`, `conversation_id`, `provider_response_id` |
| every message part, also inside events | `timestamp`, `tool_call_id`, `id` |
| every event | `tool_call_id`, `enqueue_id` |

[`REVIEWED_FIELDS`][durable_agents.prefect._cache.REVIEWED_FIELDS] lists every field of pydantic-ai's
message, part and event classes that this table was decided against; a test fails when pydantic-ai adds one.

Tool arguments, deps, run metadata, model settings and request parameters are kept whole, so any
difference there changes the key. Deps are hashed in canonical JSON (object keys and set elements sorted),
so a set in the deps gives the same key in every process. The model is identified by the run's model id
and the resolved model's `system:model_name`, so a run on another model never gets this one's answer. A
model request's payload carries only the messages that are new since the previous request; its
fingerprint hashes the projection of the run's *whole* history instead, so equal fingerprints mean equal
conversations in equally configured runs.

- [`RUN_SCOPED`][durable_agents.prefect.RUN_SCOPED] (the default): `hash(agent run key, fingerprint)`, the
  agent run key being the flow run id (for a subflow, the id of the task run that tracks the call in the parent
  flow run, which every retry of the parent keeps) and the agent run's number within it.
- [`CROSS_RUN`][durable_agents.prefect.CROSS_RUN] (opt-in): `hash(fingerprint)`, shared by every run.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pydantic_core
from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext

from .._units import UnitKind

__all__ = [
    "CROSS_RUN",
    "FINGERPRINT_PARAMETER",
    "REVIEWED_FIELDS",
    "RUN_PARAMETER",
    "RUN_SCOPED",
    "CrossRunCache",
    "RunScope",
    "RunScopedCache",
    "UnitOccurrences",
    "project_event",
    "project_message",
    "project_payload",
    "unit_fingerprint",
]


@dataclass(frozen=True)
class RunScope:
    """What a unit's fingerprint hashes besides its payload: what its run is, in a process-independent form."""

    messages: Sequence[bytes] | None
    """For model units, every message of the run so far, as encoded in the payloads; `None` for other units."""
    deps: bytes
    """The run's deps in canonical JSON (see [`canonical_json`][durable_agents._codec.canonical_json])."""
    metadata: bytes = b"null"
    """The run's `metadata`, as JSON."""
    model: str = ""
    """The identity of the run's model: the resolved model's `system:model_name` (or its `provider:model` string)."""
    digests: dict[bytes, str] = field(default_factory=dict[bytes, str], compare=False, repr=False)
    """Message digests by encoded message, kept for as long as the run: its history is re-hashed at every model
    request. Per run, not per process: a process-wide cache keyed by the messages would keep every run's alive."""


FINGERPRINT_PARAMETER = "fingerprint"
"""The name of the task parameter that carries a unit's fingerprint to the cache policy."""
RUN_PARAMETER = "run"
"""The name of the task parameter that carries the agent run's key (`<flow run id>:<n-th run in it>`, or
`call-<parent task run id>:<n>` in a subflow)."""

_FRAME_DROP = frozenset({"v", "run", "base", "digest", "params", "messages", "trace"})
# Deps in frames are JSON encoded in the process that built the frame, with set elements in that process's hash
# order; the scope's canonical form replaces them.
_SCOPED_FRAME_DROP = _FRAME_DROP | {"deps"}
# The deadline is wall-clock time from the start of the flow body: a resume starts it again.
_CTX_DROP = frozenset({"run_id", "conversation_id", "tool_call_id", "deadline"})
_MESSAGE_DROP = frozenset({"timestamp", "run_id", "conversation_id", "provider_response_id"})
_PART_DROP = frozenset({"timestamp", "tool_call_id", "id"})
# Events carry parts and messages (projected as such) and ids made up per execution.
_EVENT_DROP = frozenset({"tool_call_id", "enqueue_id"})

REVIEWED_FIELDS: Mapping[str, frozenset[str]] = {
    "ModelRequest": frozenset(
        {"parts", "timestamp", "instructions", "kind", "run_id", "conversation_id", "metadata", "state"}
    ),
    "ModelResponse": frozenset(
        {
            "parts",
            "usage",
            "model_name",
            "model_id",
            "timestamp",
            "kind",
            "provider_name",
            "provider_url",
            "canonical_system",
            "provider_details",
            "provider_response_id",
            "finish_reason",
            "run_id",
            "conversation_id",
            "metadata",
            "workspace_ref",
            "history_digest",
            "failed_attempts",
            "state",
        }
    ),
    "SystemPromptPart": frozenset(
        {"content", "timestamp", "dynamic_ref", "context_id", "scope", "metadata", "part_kind"}
    ),
    "UserPromptPart": frozenset({"content", "timestamp", "part_kind"}),
    "SpeechPart": frozenset(
        {
            "speaker",
            "transcript",
            "audio",
            "interrupted_at_ms",
            "timestamps",
            "id",
            "provider_name",
            "provider_details",
            "part_kind",
        }
    ),
    "ToolSearchReturnPart": frozenset(
        {"tool_name", "content", "tool_call_id", "tool_kind", "metadata", "timestamp", "outcome", "retry", "part_kind"}
    ),
    "LoadCapabilityReturnPart": frozenset(
        {"tool_name", "content", "tool_call_id", "tool_kind", "metadata", "timestamp", "outcome", "retry", "part_kind"}
    ),
    "ToolReturnPart": frozenset(
        {"tool_name", "content", "tool_call_id", "tool_kind", "metadata", "timestamp", "outcome", "retry", "part_kind"}
    ),
    "RetryPromptPart": frozenset({"content", "tool_name", "tool_call_id", "timestamp", "part_kind"}),
    "RetryFeedbackPart": frozenset({"content", "retry", "timestamp", "part_kind"}),
    "ToolAvailabilityDeltaPart": frozenset({"tools_added", "tool_call_id", "part_kind"}),
    "CapabilityLoadDeltaPart": frozenset({"loaded", "tool_call_id", "part_kind"}),
    "ModelSettingsDeltaPart": frozenset({"settings", "top_level", "part_kind"}),
    "InstructionDeltaPart": frozenset({"id", "content", "base_hash", "part_kind"}),
    "InstructionBaselinePart": frozenset({"instructions", "part_kind"}),
    "CompactionPart": frozenset({"content", "id", "provider_name", "provider_details", "metadata", "part_kind"}),
    "TextPart": frozenset({"content", "id", "provider_name", "provider_details", "citations", "part_kind"}),
    "ToolSearchCallPart": frozenset(
        {"tool_name", "args", "tool_call_id", "tool_kind", "id", "provider_name", "provider_details", "part_kind"}
    ),
    "LoadCapabilityCallPart": frozenset(
        {"tool_name", "args", "tool_call_id", "tool_kind", "id", "provider_name", "provider_details", "part_kind"}
    ),
    "ToolCallPart": frozenset(
        {"tool_name", "args", "tool_call_id", "tool_kind", "id", "provider_name", "provider_details", "part_kind"}
    ),
    "NativeToolSearchCallPart": frozenset(
        {"tool_name", "args", "tool_call_id", "tool_kind", "id", "provider_name", "provider_details", "part_kind"}
    ),
    "NativeToolCallPart": frozenset(
        {"tool_name", "args", "tool_call_id", "tool_kind", "id", "provider_name", "provider_details", "part_kind"}
    ),
    "NativeToolSearchReturnPart": frozenset(
        {
            "tool_name",
            "content",
            "tool_call_id",
            "tool_kind",
            "metadata",
            "timestamp",
            "outcome",
            "provider_name",
            "provider_details",
            "part_kind",
        }
    ),
    "NativeToolReturnPart": frozenset(
        {
            "tool_name",
            "content",
            "tool_call_id",
            "tool_kind",
            "metadata",
            "timestamp",
            "outcome",
            "provider_name",
            "provider_details",
            "part_kind",
        }
    ),
    "ThinkingPart": frozenset({"content", "id", "signature", "provider_name", "provider_details", "part_kind"}),
    "FilePart": frozenset({"content", "id", "provider_name", "provider_details", "part_kind"}),
    "PartStartEvent": frozenset({"index", "part", "previous_part_kind", "canonical_system", "event_kind"}),
    "PartDeltaEvent": frozenset({"index", "delta", "event_kind"}),
    "PartEndEvent": frozenset({"index", "part", "next_part_kind", "canonical_system", "event_kind"}),
    "FinalResultEvent": frozenset({"tool_name", "tool_call_id", "event_kind"}),
    "EnqueuedMessagesEvent": frozenset({"enqueue_id", "messages", "parts", "event_kind"}),
    "FunctionToolCallEvent": frozenset({"part", "args_valid", "event_kind"}),
    "FunctionToolResultEvent": frozenset({"part", "content", "event_kind"}),
    "ToolAvailabilityDeltaEvent": frozenset({"part", "event_kind"}),
    "CapabilityLoadDeltaEvent": frozenset({"part", "event_kind"}),
    "ModelSettingsDeltaEvent": frozenset({"part", "event_kind"}),
    "OutputToolCallEvent": frozenset({"part", "args_valid", "event_kind"}),
    "OutputToolResultEvent": frozenset({"part", "event_kind"}),
    "DeferredToolRequestsEvent": frozenset({"requests", "event_kind"}),
    "DeferredToolResultsEvent": frozenset({"results", "event_kind"}),
    "RealtimeTurnCompleteEvent": frozenset({"event_kind"}),
    "RealtimeInputSpeechStartEvent": frozenset({"item_id", "event_kind"}),
    "RealtimeInputSpeechEndEvent": frozenset({"item_id", "event_kind"}),
    "RealtimeOutputSpeechStartEvent": frozenset({"event_kind"}),
    "RealtimeOutputSpeechEndEvent": frozenset({"event_kind"}),
    "RealtimeResponseInterruptedEvent": frozenset({"event_kind"}),
    "RealtimeInputTranscriptionErrorEvent": frozenset(
        {"message", "type", "code", "item_id", "content_index", "event_kind"}
    ),
    "RealtimeSessionReconnectEvent": frozenset({"state_restored", "event_kind"}),
    "RealtimeSessionErrorEvent": frozenset({"message", "type", "code", "recoverable", "event_kind"}),
    "CustomEvent": frozenset({"name", "tool_call_id", "tool_name", "event_kind"}),
    "CapabilityEvent": frozenset({"kind", "capability_id", "tool_call_id", "tool_name", "event_kind"}),
}
"""Every field of every pydantic-ai message, part and event class, as of the last review of this projection.

A field in a drop set above is left out of the key; every other field is kept. A test compares this table with
pydantic-ai's classes, so a new field (which may be a timestamp or an id made up per execution) fails the suite
until someone decides whether it belongs in the key.
"""


def _project_part(part: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in part.items() if k not in _PART_DROP}


def project_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message (as JSON data) without its volatile fields; parts keep everything but theirs."""
    out = {k: v for k, v in message.items() if k not in _MESSAGE_DROP}
    parts = message.get("parts")
    if isinstance(parts, list):
        out["parts"] = [
            _project_part(cast(Mapping[str, Any], part)) if isinstance(part, Mapping) else part
            for part in cast(list[Any], parts)
        ]
    return out


def project_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """An agent stream event (as JSON data) without volatile fields, also in the parts and messages it carries."""
    out = {k: v for k, v in event.items() if k not in _EVENT_DROP}
    for key in ("part", "result"):
        if isinstance(out.get(key), Mapping):
            out[key] = _project_part(out[key])
    if isinstance(out.get("parts"), list):
        out["parts"] = [
            _project_part(cast(Mapping[str, Any], p)) if isinstance(p, Mapping) else p
            for p in cast(list[Any], out["parts"])
        ]
    if isinstance(out.get("messages"), list):
        out["messages"] = [
            project_message(cast(Mapping[str, Any], m)) if isinstance(m, Mapping) else m
            for m in cast(list[Any], out["messages"])
        ]
    return out


def _message_digest(chunk: bytes, memo: dict[bytes, str] | None = None) -> str:
    if memo is not None and (digest := memo.get(chunk)) is not None:
        return digest
    projected = project_message(cast(Mapping[str, Any], pydantic_core.from_json(chunk)))
    digest = hashlib.blake2b(pydantic_core.to_json(projected), digest_size=16).hexdigest()
    if memo is not None:
        memo[chunk] = digest
    return digest


def _project_frame(frame: Mapping[str, Any], drop: frozenset[str]) -> dict[str, Any]:
    out = {k: v for k, v in frame.items() if k not in drop}
    ctx = frame.get("ctx")
    if isinstance(ctx, Mapping):
        out["ctx"] = {k: v for k, v in cast(Mapping[str, Any], ctx).items() if k not in _CTX_DROP}
    events = frame.get("events")
    if isinstance(events, list):
        out["events"] = [
            project_event(cast(Mapping[str, Any], e)) if isinstance(e, Mapping) else e for e in cast(list[Any], events)
        ]
    return out


def project_payload(kind: UnitKind, payload: bytes, scope: RunScope | None = None) -> dict[str, Any]:
    """The stable projection of a unit input (see the module docs for what is dropped).

    Args:
        kind: The unit's kind.
        payload: The encoded unit input.
        scope: The run the unit belongs to: its canonical deps, metadata, model identity and, for model units,
            its whole message history (the payload itself only holds the messages that are new, and deps only
            when it streams). `None` projects the payload alone.
    """
    frame = cast(Mapping[str, Any], pydantic_core.from_json(payload))
    projected: dict[str, Any] = {"frame": _project_frame(frame, _FRAME_DROP if scope is None else _SCOPED_FRAME_DROP)}
    messages: Sequence[bytes] | None = None
    if scope is not None:
        projected["deps"] = scope.deps.decode()
        projected["metadata"] = scope.metadata.decode()
        projected["model"] = scope.model
        messages = scope.messages
    if kind is UnitKind.MODEL:
        if messages is None:
            messages = [pydantic_core.to_json(m) for m in cast(list[Any], frame.get("messages") or [])]
        memo = scope.digests if scope is not None else None
        projected["messages"] = [_message_digest(c, memo) for c in messages]
    return projected


def unit_fingerprint(label: str, kind: UnitKind, payload: bytes, occurrence: int, scope: RunScope | None = None) -> str:
    """The fingerprint of one unit execution: label, projected input and occurrence number, hashed.

    Args:
        label: The unit's label (`<unit name>` or `<unit name>/<tool>`).
        kind: The unit's kind.
        payload: The encoded unit input.
        occurrence: How many units of this run had the same label and projection before this one (0, 1, ...).
        scope: The run the unit belongs to; see `project_payload`.
    """
    data = {"label": label, "input": project_payload(kind, payload, scope), "occurrence": occurrence}
    return hashlib.sha256(pydantic_core.to_json(data)).hexdigest()


class UnitOccurrences:
    """Counts units by label and projection within one agent run, so identical calls get distinct keys."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def next(self, label: str, kind: UnitKind, payload: bytes, scope: RunScope | None = None) -> str:
        """The fingerprint of the next unit with this input."""
        base = unit_fingerprint(label, kind, payload, 0, scope)
        occurrence = self._seen[base]
        self._seen[base] += 1
        return base if occurrence == 0 else unit_fingerprint(label, kind, payload, occurrence, scope)


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
        """`hash(agent run key, unit fingerprint)`; `None` (no caching) outside a flow run.

        The agent run key is `<flow run id>:<n>`, `n` counting the agent's runs within the flow run, so two runs
        of the same agent in one flow run never share a result. A subflow is keyed by the task run that tracks its
        call in the parent flow run instead, so a retry of the parent skips the units its first attempt completed.
        """
        fingerprint = _fingerprint(inputs)
        flow_run_id = task_ctx.task_run.flow_run_id
        if fingerprint is None or flow_run_id is None:
            return None
        run = inputs.get(RUN_PARAMETER)
        scope = run if isinstance(run, str) else str(flow_run_id)
        return "durable-agents-run-" + hashlib.sha256(f"{scope}:{fingerprint}".encode()).hexdigest()


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
