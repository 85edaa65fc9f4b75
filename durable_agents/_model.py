"""Model requests as units.

On the container side, [`DurableModel`][durable_agents._model.DurableModel] stands in for the
run's model: everything that is pure computation (profile, request preparation) is answered in
the container, by the model instance the user built or, for a model string, by a
`NamedModel` that builds no provider; only `request` /
`request_stream` cross into a unit, where the real model is built. In
the unit, the request runs on the real model; when the run has an event-stream handler, the unit
streams and hands the live stream to the handler, then returns the final response.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import pydantic_core
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import CompletedStreamedResponse, Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import RunContext

from ._context import restore_ctx, snapshot_ctx
from ._errors import error_outcome, rebuild_error
from ._frames import (
    ErrorOutcome,
    Input,
    MissOutcome,
    ModelInput,
    Outcome,
    ResponseOutcome,
    SegmentInput,
    StagedOutcome,
    decode_input,
    decode_outcome,
    encode,
    encode_response,
    response_json,
)
from ._history import HISTORY_CACHE, encode_message
from ._live import ModelEventsPublisher
from ._model_ids import NamedModel
from ._observers import UnitEvent
from ._policy import is_fatal
from ._run import RunState, current_run, traceparent_of
from ._secrets import reveal, to_refs
from ._telemetry import annotate_unit, begin_unit, container_log
from ._units import UnitKind
from .exceptions import (
    EventHandlerError,
    HistoryUnavailableError,
    PayloadTooLargeError,
    ProtocolError,
    SerializationError,
    UnitFailedError,
)

if TYPE_CHECKING:
    from ._agent import DurableAgent

__all__ = ["DurableModel", "model_unit_body"]


class DurableModel(WrapperModel):
    """The container-side stand-in for the run's model; requests become model units."""

    def __init__(self, wrapped: Model | str, owner: DurableAgent[Any, Any]) -> None:
        """Stand in for `wrapped`: a model instance, or a `'provider:model'` string that is never built here."""
        super().__init__(NamedModel(wrapped) if isinstance(wrapped, str) else wrapped)
        self._owner = owner

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        return await self._request(messages, model_settings, model_request_parameters, None)

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncGenerator[StreamedResponse]:
        # The live stream stays inside the unit (where the event-stream handler sees it); the container gets the
        # finished response. Its parts are replayed as part events, whole, only for container code that streams
        # (a buffered `run_stream_events`, `node.stream()` under `iter`).
        response = await self._request(messages, model_settings, model_request_parameters, run_context)
        state = current_run(self._owner.name)
        replay = state is not None and state.replay_parts
        yield CompletedStreamedResponse(
            response, model_request_parameters=model_request_parameters, replay_events=replay
        )

    async def _request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        params: ModelRequestParameters,
        run_context: RunContext[Any] | None,
    ) -> ModelResponse:
        owner = self._owner
        state = current_run(owner.name)
        if state is None:
            # Not inside a durable run (e.g. `override` used outside a container): plain request.
            return await self.wrapped.request(messages, model_settings, params)
        stream = run_context is not None and (state.handler is not None or owner.live_events is not None)
        base, digest, new = state.log.delta(messages)
        params_key, send_params = state.log.params(params)
        request = ModelInput(
            run=state.run_key,
            base=base,
            digest=digest,
            messages=new,
            model=state.model_key,
            settings=to_refs(model_settings),
            params=params if send_params else None,
            params_digest=params_key,
            ctx=snapshot_ctx(run_context) if stream and run_context is not None else None,
            deps=state.deps_json if stream else None,
            trace=traceparent_of(state),
        )
        unit = owner.model_unit
        payload = self._encode(request)
        if _too_large(payload, owner.max_payload_bytes):
            # The new messages alone are over the engine's limit: send them ahead in pieces that fit.
            await self._stage(state, base)
            request.base, request.digest, request.messages = state.log.length, state.log.digest(state.log.length), []
            payload = self._encode(request)
        answer = await owner.call_unit(unit, payload, label=unit.name)
        outcome = decode_outcome(answer)
        if isinstance(outcome, MissOutcome):
            container_log(
                owner,
                logging.INFO,
                "The model unit of agent %r did not find run %s's history (another worker, or an evicted cache); "
                "resending the %d messages.",
                owner.name,
                state.run_key,
                state.log.length,
            )
            answer = await self._resend(state, request)
            outcome = decode_outcome(answer)
        if isinstance(outcome, ErrorOutcome):
            raise rebuild_error(unit.name, outcome)
        if not isinstance(outcome, ResponseOutcome):
            raise UnitFailedError(unit.name, "ProtocolError", f"a model unit answered {outcome.t!r}")
        # The unit stamped the response already; if it did not (an older unit), the encoding changes with the stamp.
        stamped = _stamp(outcome.response, messages, self.model_id)
        state.log.add_response(outcome.response, None if stamped else response_json(answer))
        return outcome.response

    def _encode(self, request: ModelInput | SegmentInput) -> bytes:
        try:
            return encode(request)
        except pydantic_core.PydanticSerializationError as exc:
            raise SerializationError(
                f"The model request of agent {self._owner.name!r} cannot be serialized: {exc}. "
                "Fix: use plain values (numbers, strings, dicts) in model_settings and message content."
            ) from exc

    async def _resend(self, state: RunState, request: ModelInput) -> bytes:
        """After a miss: resend the whole history, in one unit if it fits the engine's limit, else in pieces."""
        owner = self._owner
        unit = owner.model_unit
        full = ModelInput(
            run=request.run,
            base=0,
            digest="",
            messages=state.log.messages,
            model=request.model,
            settings=request.settings,
            params=state.log.last_params,
            params_digest=request.params_digest,
            ctx=request.ctx,
            deps=request.deps,
            trace=request.trace,
        )
        payload = self._encode(full)
        if _too_large(payload, owner.max_payload_bytes):
            await self._stage(state, 0)
            full.base, full.digest, full.messages = state.log.length, state.log.digest(state.log.length), []
            payload = self._encode(full)
        answer = await owner.call_unit(unit, payload, label=unit.name)
        if isinstance(decode_outcome(answer), MissOutcome):
            raise HistoryUnavailableError(
                f"The model unit of agent {owner.name!r} could not obtain the run's history, even after it was "
                "resent in pieces: the pieces ran on workers that do not share a cache and the engine's record of "
                "the run could not be read. Fix: let activity workers read workflow histories, or raise the "
                "engine's payload limit so the history fits one unit."
            )
        return answer

    async def _stage(self, state: RunState, start: int) -> None:
        """Send the history from `start` on ahead of a request, in pieces that each fit the engine's limit."""
        owner = self._owner
        unit = owner.model_unit
        limit = owner.max_payload_bytes
        for base, digest, messages in state.log.segments(start, None if limit is None else max(1, limit - 4096)):
            segment = SegmentInput(
                run=state.run_key, base=base, digest=digest, messages=messages, trace=traceparent_of(state)
            )
            outcome = decode_outcome(await owner.call_unit(unit, self._encode(segment), label=f"{unit.name}/history"))
            if isinstance(outcome, ErrorOutcome):
                raise rebuild_error(unit.name, outcome)
            if not isinstance(outcome, StagedOutcome):
                raise HistoryUnavailableError(
                    f"A piece of the history of agent {owner.name!r} could not be stored by its model unit "
                    f"({outcome.t!r}). Fix: let activity workers read workflow histories, or raise the engine's "
                    "payload limit so the history fits one unit."
                )


def _too_large(payload: bytes, limit: int | None) -> bool:
    return limit is not None and len(payload) > limit


async def model_unit_body(owner: DurableAgent[Any, Any], payload: bytes) -> bytes:
    """The code of the model unit: resolve the history, run the real model, encode the response."""
    unit = owner.model_unit
    try:
        request = decode_input(payload)
    except ProtocolError as exc:
        return encode(error_outcome(exc))
    if isinstance(request, SegmentInput):
        begin_unit(UnitEvent(unit.name, UnitKind.MODEL, f"{unit.name}/history", owner.name), request.trace)
        held = await _resolve(owner, request)
        return encode(StagedOutcome() if held is not None else MissOutcome())
    if not isinstance(request, ModelInput):
        return encode(error_outcome(UnitFailedError(unit.name, "ProtocolError", f"unexpected input {request.t!r}")))
    begin_unit(UnitEvent(unit.name, UnitKind.MODEL, unit.name, owner.name), request.trace)
    resolved = await _resolve(owner, request)
    if resolved is None:
        HISTORY_CACHE.note_miss()
        return encode(MissOutcome())
    messages, params = resolved
    assert params is not None
    try:
        model = owner.resolve_unit_model(request.model)
        # Secrets passed by reference get their values here, where they are used, and nowhere else.
        settings = cast(ModelSettings | None, reveal(request.settings))
        if owner.builds_unit_model(request.model) and "max_retries" not in model.unsupported_settings:
            # The engine retries the unit; the SDK client this library built must not retry inside each attempt.
            settings = cast(ModelSettings, {"max_retries": 0, **(settings or {})})
        handler = owner.unit_event_handler()
        if request.ctx is not None and (handler is not None or owner.live_events is not None):
            response = await _stream(
                owner, request, model=model, messages=messages, settings=settings, params=params, handler=handler
            )
        else:
            response = await model.request(messages, settings, params)
        annotate_unit(_usage_attributes(response))
        # Stamped before it is recorded, so the engine's record holds the response exactly as both sides do.
        _stamp(response, messages, model.model_id)
        try:
            chunk = encode_message(response)
        except pydantic_core.PydanticSerializationError as exc:
            raise SerializationError(f"The response of the model in {unit.name} cannot be serialized: {exc}") from exc
        data = encode_response(chunk)
        if owner.max_payload_bytes is not None and len(data) > owner.max_payload_bytes:
            raise PayloadTooLargeError(f"The model response in {unit.name}", len(data), owner.max_payload_bytes)
    except Exception as exc:
        if is_fatal(exc):
            return encode(error_outcome(exc))
        raise
    HISTORY_CACHE.add_response(request.run, len(messages), response, chunk)
    return data


async def _stream(
    owner: DurableAgent[Any, Any],
    request: ModelInput,
    *,
    model: Model,
    messages: list[ModelMessage],
    settings: ModelSettings | None,
    params: ModelRequestParameters,
    handler: Any,
) -> ModelResponse:
    """Stream the request, handing the live stream to the run's handler and publishing it as live events."""
    assert request.ctx is not None
    unit = owner.model_unit
    ctx = restore_ctx(request.ctx, owner.deps_codec.decode_value(request.deps), model)
    live = owner.live_events
    # Keyed by the request's place in the conversation: a retried unit publishes the same keys again.
    publisher = (
        None
        if live is None
        else ModelEventsPublisher(f"{request.run}:m{len(messages)}", live.delta_interval, owner.publish_live)
    )
    try:
        async with model.request_stream(messages, settings, params, ctx) as streamed:
            guard = _StreamGuard(streamed)
            source = guard if publisher is None else publisher.tap(guard)
            if handler is not None:
                try:
                    await handler(ctx, source)
                except Exception as exc:
                    if guard.error is not None and exc is guard.error:
                        raise  # the model's stream failed, not the handler: the policy judges it
                    raise EventHandlerError(owner.name, unit.name, exc) from exc
            async for _ in source:
                pass
            async for _ in streamed:  # what a handler that closed its stream early left
                pass
        if publisher is not None:
            await publisher.close()
    finally:
        if publisher is not None:
            publisher.stop()
    return streamed.get()


def _usage_attributes(response: ModelResponse) -> dict[str, Any]:
    """The OpenTelemetry GenAI attributes of a model response: token usage, once per request that really ran."""
    usage = response.usage
    return {
        "gen_ai.request.model": response.model_name or "",
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
    }


def _stamp(response: ModelResponse, messages: list[ModelMessage], model_id: str) -> bool:
    """Fill in what the agent graph stamps on a response when it commits it (only where unset); `True` if it did.

    Both sides stamp the same values (the run ids of the request that was answered, and the serving model's id),
    so the response the container records is byte for byte the one the unit side holds, and it is not sent back
    with the next request.
    """
    before = (response.model_id, response.run_id, response.conversation_id)
    response.model_id = response.model_id or model_id
    request = next((m for m in reversed(messages) if m.kind == "request"), None)
    if request is not None:
        response.run_id = response.run_id or request.run_id
        response.conversation_id = response.conversation_id or request.conversation_id
    return before != (response.model_id, response.run_id, response.conversation_id)


async def _resolve(
    owner: DurableAgent[Any, Any], request: ModelInput | SegmentInput
) -> tuple[list[ModelMessage], ModelRequestParameters | None] | None:
    """The run's full history for a request or a history piece (which needs no request parameters).

    Looked up in the cache, then the container's live log, then the engine's record of the run.
    """
    params_digest, params = (request.params_digest, request.params) if isinstance(request, ModelInput) else (None, None)

    def resolve(records: list[tuple[Input, Outcome | None]] | None = None) -> Any:
        return HISTORY_CACHE.resolve(
            request.run,
            request.base,
            request.digest,
            request.messages,
            params_digest=params_digest,
            params=params,
            records=records,
        )

    resolved = resolve()
    if resolved is not None or not HISTORY_CACHE.read_engine_records:
        return resolved
    records = await owner.recorded_exchanges(owner.model_unit)
    if not records:
        return None
    return resolve([(decode_input(i), None if o is None else decode_outcome(o)) for i, o in records])


class _StreamGuard:
    """The live stream as the handler sees it, remembering an error the stream itself raised."""

    def __init__(self, streamed: StreamedResponse) -> None:
        self._streamed = streamed
        self.error: BaseException | None = None

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for event in self._streamed:
                yield event
        except BaseException as exc:
            self.error = exc
            raise
