"""Tool approvals bound to the call they approve: its tool name and its arguments.

pydantic-ai matches an approval to a tool call by `tool_call_id` only. When the decision travels
through a person, a queue or a second run (`deferred_tool_results=` with a stored `message_history`),
the call's arguments can change on the way (a tampered history, a decision reused for another call
with the same id) and the approval would still let the changed call run.
[`approve`][durable_agents.approve] builds `DeferredToolResults` whose metadata holds, per call, a digest
of the call as it was approved: blake2b over the canonical JSON of its tool name and arguments. Before a
durable run executes an approved call whose metadata holds such a digest, it computes the digest of the
call in the run's history again; when they differ, the call is refused with
[`ApprovalMismatchError`][durable_agents.exceptions.ApprovalMismatchError], which fails the run (a
changed call is a sign of tampering, not a decision for the model to work around). Approvals without a
digest work as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from pydantic_ai.messages import ModelResponse, ToolCallPart
from pydantic_ai.tools import DeferredToolApprovalResult, DeferredToolRequests, DeferredToolResults, RunContext

from .exceptions import ApprovalMismatchError

__all__ = ["APPROVAL_DIGEST_KEY", "approve", "call_digest", "check_bound_approval"]

APPROVAL_DIGEST_KEY = "durable_agents.approval_digest"
"""The key of a call's metadata (`DeferredToolResults.metadata[call_id]`) that holds the approved call's digest."""


def call_digest(call: ToolCallPart) -> str:
    """The digest of a tool call: blake2b over the canonical JSON of its tool name and arguments."""
    try:
        args: object = call.args_as_dict()
    except ValueError:  # arguments that are not a JSON object are bound as the text the model sent
        args = call.args
    canonical = json.dumps(
        {"tool": call.tool_name, "args": args}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def approve(
    calls: DeferredToolRequests | ToolCallPart | Sequence[ToolCallPart],
    decisions: Mapping[str, bool | DeferredToolApprovalResult] | None = None,
) -> DeferredToolResults:
    """Approve tool calls, each approval bound to the call's tool name and arguments.

    Pass the result where a `DeferredToolResults` goes: as the answer to a `RequestInput` wait
    (`resolve_external_event(token, approve(requests))`) or to a new run
    (`run(message_history=..., deferred_tool_results=approve(requests))`). A durable run refuses an approved
    call whose arguments (or tool) differ from the ones approved here, with `ApprovalMismatchError`.

    Args:
        calls: The calls to decide: the `approvals` of a `DeferredToolRequests`, or the calls themselves.
        decisions: The decision per `tool_call_id` (`True`, `False`, `ToolApproved` or `ToolDenied`);
            a call not listed is approved.

    Returns:
        Results with a decision and a digest (in `metadata`) for every call.
    """
    if isinstance(calls, DeferredToolRequests):
        parts = list(calls.approvals)
    elif isinstance(calls, ToolCallPart):
        parts = [calls]
    else:
        parts = list(calls)
    decisions = dict(decisions or {})
    if unknown := set(decisions) - {part.tool_call_id for part in parts}:
        raise ValueError(f"`decisions` names tool calls that are not among `calls`: {sorted(unknown)}")
    return DeferredToolResults(
        approvals={part.tool_call_id: decisions.get(part.tool_call_id, True) for part in parts},
        metadata={part.tool_call_id: {APPROVAL_DIGEST_KEY: call_digest(part)} for part in parts},
    )


def check_bound_approval(ctx: RunContext[Any]) -> None:
    """Refuse an approved call that differs from the call its approval was bound to (if it was bound).

    Raises:
        ApprovalMismatchError: The call in the run's history is not the call that was approved.
    """
    metadata: object = ctx.tool_call_metadata
    if not ctx.tool_call_approved or not isinstance(metadata, Mapping):
        return
    approved = cast(Mapping[str, Any], metadata).get(APPROVAL_DIGEST_KEY)
    if approved is None:
        return
    call = _find_call(ctx)
    if call is None or call_digest(call) != approved:
        shown = "not found in the run's history" if call is None else f"{call.tool_name}({call.args_as_json_str()})"
        raise ApprovalMismatchError(
            f"The approval of tool call {ctx.tool_call_id!r} was given for other arguments than the call's, "
            f"{shown}, so the call was refused. The history or the decision was changed after the approval. "
            "Fix: ask for a new decision on the call as it stands, and build it with `durable_agents.approve`."
        )


def _find_call(ctx: RunContext[Any]) -> ToolCallPart | None:
    for message in reversed(ctx.messages):
        if isinstance(message, ModelResponse):
            for part in message.parts:
                if isinstance(part, ToolCallPart) and part.tool_call_id == ctx.tool_call_id:
                    return part
    return None
