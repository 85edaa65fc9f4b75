"""Reading a run's earlier unit exchanges back from its workflow history.

Model activities receive only the new part of the message history (see `durable_agents._history`);
the activity side keeps the rest in a per-process cache. On a fleet of activity workers the next
model activity of a run often lands on a process that never saw the run, and has to rebuild the
history somehow. The workflow history already holds everything needed: every model activity's
input (the delta it was sent) and result (the response it gave) are recorded there, the server
keeps them for as long as the run exists, and every worker can read them with the client it
already has. So the workflow history is the store, and no other shared store (database, cache
server) has to be deployed or kept consistent with it.

The cost is one history read per rebuild: the whole history of the run, paged, over the client's
connection (a few hundred kilobytes for a run of dozens of model requests, because the inputs
are deltas), plus decoding the payloads of one activity type. That is paid only when a process
misses, not on every request.
"""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.api.common.v1 import Payloads
from temporalio.common import RawValue
from temporalio.converter import ActivitySerializationContext, DataConverter

from ._payloads import frame_of

__all__ = ["recorded_exchanges"]

_LOGGER = logging.getLogger("durable_agents.temporal")


async def recorded_exchanges(unit_name: str) -> list[tuple[bytes, bytes | None]] | None:
    """The inputs and results of the calling workflow run's activities of type `unit_name`, in schedule order.

    Call it inside an `async def` activity started by a workflow. Each entry is `(input, result)`: the frames the
    unit took and returned (payloads decoded with the client's data converter, so a payload codec such as
    encryption is undone; frames stored as `json/plain` and, by older versions, as `binary/plain` are both read);
    `result` is `None` for an activity that has not completed, failed, timed out or was
    cancelled (the calling activity itself, for one).

    Args:
        unit_name: The activity type to collect, e.g. `'<agent>.model'`.

    Returns:
        The exchanges, or `None` when they cannot be read: not in an activity, not started by a workflow,
        no client (a sync activity), or the history read failed. The reason is logged at DEBUG.
    """
    try:
        info = activity.info()
        client = activity.client()
    except RuntimeError as exc:
        _LOGGER.debug("No recorded exchanges of %s: %s", unit_name, exc)
        return None
    if info.workflow_id is None:
        _LOGGER.debug("No recorded exchanges of %s: activity %s has no workflow", unit_name, info.activity_id)
        return None
    handle = client.get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)
    inputs: list[tuple[str, str, Payloads]] = []  # activity id, task queue, input
    index_of: dict[int, int] = {}  # scheduled event id -> position in `inputs`
    results: dict[int, Payloads] = {}
    try:
        async for event in handle.fetch_history_events():
            if event.HasField("activity_task_scheduled_event_attributes"):
                scheduled = event.activity_task_scheduled_event_attributes
                if scheduled.activity_type.name == unit_name:
                    index_of[event.event_id] = len(inputs)
                    inputs.append((scheduled.activity_id, scheduled.task_queue.name, scheduled.input))
            elif event.HasField("activity_task_completed_event_attributes"):
                completed = event.activity_task_completed_event_attributes
                position = index_of.get(completed.scheduled_event_id)
                if position is not None:
                    results[position] = completed.result
        exchanges: list[tuple[bytes, bytes | None]] = []
        for position, (activity_id, task_queue, payloads) in enumerate(inputs):
            # The workflow encoded the input, and the worker the result, in this activity's serialization context;
            # a context-aware codec (e.g. a key per workflow) needs the same context to decode them.
            context = ActivitySerializationContext(
                namespace=info.namespace,
                activity_id=activity_id,
                activity_type=unit_name,
                activity_task_queue=task_queue,
                workflow_id=info.workflow_id,
                workflow_type=info.workflow_type,
                is_local=False,
            )
            converter = client.data_converter.with_context(context)
            result = results.get(position)
            exchanges.append(
                (await _decode(converter, payloads), None if result is None else await _decode(converter, result))
            )
    except Exception as exc:  # an RPC error, or a payload this converter cannot decode: the caller falls back
        _LOGGER.debug("No recorded exchanges of %s in workflow %s: %r", unit_name, info.workflow_id, exc)
        return None
    return exchanges


async def _decode(converter: DataConverter, payloads: Payloads) -> bytes:
    (value,) = await converter.decode_wrapper(payloads, [RawValue])
    return frame_of(value)
