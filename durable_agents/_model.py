"""Model requests as units.

On the container side, [`DurableModel`][durable_agents._model.DurableModel] stands in for the
run's model: everything that is pure computation (profile, request preparation) is answered in
the container, by the model instance the user built or, for a model string, by a
[`NamedModel`][durable_agents._model_ids.NamedModel] that builds no provider; only `request` /
`request_stream` cross into a unit, where the real model is built. In
the unit, the request runs on the real model; when the run has an event-stream handler, the unit
streams and hands the live stream to the handler, then returns the final response.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import pydantic_core
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import CompletedStreamedResponse, Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import RunContext

from ._codec import (
    PARAMS_TA,
    RESPONSE_TA,
    check_size,
    decode_error,
    encode_error,
    is_fatal,
    pack,
    restore_ctx,
    snapshot_ctx,
    unpack,
)
from ._history import HISTORY_CACHE
from ._model_ids import NamedModel
from ._observers import UnitEvent, notify
from ._run import current_run
from ._units import UnitKind
from .exceptions import SerializationError, UnitFailedError

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
        # The container asks for a stream only to feed the event-stream handler; the handler already saw the
        # live stream inside the unit, so the container gets the finished response and no part events.
        response = await self._request(messages, model_settings, model_request_parameters, run_context)
        yield CompletedStreamedResponse(response, model_request_parameters=model_request_parameters)

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
        stream = run_context is not None and state.handler is not None
        base, digest, chunks = state.log.delta(messages)
        params_json = PARAMS_TA.dump_json(params)
        params_digest, send_params = state.log.params(params_json)
        try:
            header: dict[str, Any] = {
                "run": state.run_key,
                "base": base,
                "digest": digest,
                "model": state.model_key,
                "settings": model_settings,
                "params": pydantic_core.from_json(params_json) if send_params else None,
                "params_digest": params_digest,
                "ctx": snapshot_ctx(run_context) if stream and run_context is not None else None,
            }
            payload = pack(header, [state.deps_bytes if stream else b"null", *chunks])
        except pydantic_core.PydanticSerializationError as exc:
            raise SerializationError(
                f"The model settings or request parameters of agent {owner.name!r} cannot be serialized: {exc}. "
                "Fix: use plain values (numbers, strings, dicts) in model_settings."
            ) from exc
        unit = owner.model_unit
        out = unpack(await owner.call_unit(unit, payload, label=unit.name))
        if out.header["kind"] == "miss":
            full = {**header, "base": 0, "digest": "", "params": pydantic_core.from_json(params_json)}
            deps = state.deps_bytes if stream else b"null"
            out = unpack(await owner.call_unit(unit, pack(full, [deps, *state.log.all_chunks()]), label=unit.name))
        kind = out.header["kind"]
        if kind == "error":
            raise decode_error(unit.name, out.header)
        if kind != "response":  # pragma: no cover - a full resend cannot miss
            raise UnitFailedError(unit.name, "ProtocolError", f"unexpected answer {kind!r} to a full resend")
        response = RESPONSE_TA.validate_json(out.chunks[0])
        state.log.add_response(response, out.chunks[0])
        return response


async def model_unit_body(owner: DurableAgent[Any, Any], payload: bytes) -> bytes:
    """The code of the model unit: resolve the history, run the real model, encode the response."""
    frame = unpack(payload)
    header = frame.header
    notify(UnitEvent(owner.model_unit.name, UnitKind.MODEL, owner.model_unit.name, owner.name))
    resolved = HISTORY_CACHE.resolve(
        header["run"],
        header["base"],
        header["digest"],
        frame.chunks[1:],
        params_digest=header["params_digest"],
        params=header["params"],
    )
    if resolved is None:
        return pack({"kind": "miss"})
    messages, params_value = resolved
    try:
        model = owner.resolve_unit_model(header["model"])
        settings = cast(ModelSettings | None, header["settings"])
        params = PARAMS_TA.validate_python(params_value)
        handler = owner.unit_event_handler()
        if header["ctx"] is not None and handler is not None:
            ctx = restore_ctx(header["ctx"], owner.deps_codec.decode(frame.chunks[0]), model)
            async with model.request_stream(messages, settings, params, ctx) as streamed:
                await handler(ctx, _drain_guard(streamed))
                async for _ in streamed:
                    pass
            response = streamed.get()
        else:
            response = await model.request(messages, settings, params)
        chunk = RESPONSE_TA.dump_json(response)
        check_size(len(chunk), owner.max_payload_bytes, f"The model response in {owner.model_unit.name}")
    except Exception as exc:
        if is_fatal(exc):
            return pack(encode_error(exc))
        raise
    HISTORY_CACHE.add_response(header["run"], len(messages), response, chunk)
    return pack({"kind": "response"}, [chunk])


async def _drain_guard(streamed: StreamedResponse) -> AsyncIterator[Any]:
    async for event in streamed:
        yield event
