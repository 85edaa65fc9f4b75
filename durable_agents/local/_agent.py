"""`LocalAgent`: units are awaited in-process, the container is the `run()` call itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Annotated, Any, TypedDict

from pydantic import Field
from pydantic_ai.agent import AbstractAgent, EventStreamHandler
from pydantic_ai.models import Model
from pydantic_ai.output import OutputDataT
from pydantic_ai.run import AgentRunResult
from pydantic_ai.tools import AgentDepsT

from .._agent import DurableAgent, ParallelExecutionMode
from .._config import UnitConfigs, config_keys
from .._engine import LOCAL_CAPABILITIES
from .._policy import pause_before_retry
from .._telemetry import unit_attempt
from .._units import Unit

__all__ = ["LocalAgent", "LocalUnitConfig"]

_IN_CONTAINER: ContextVar[bool] = ContextVar("durable_agents_local_container", default=False)


class LocalUnitConfig(TypedDict, total=False):
    """Config of a local unit."""

    timeout_seconds: Annotated[float, Field(gt=0)]
    """Cancel the unit if it runs longer than this."""
    max_attempts: Annotated[int, Field(ge=1)]
    """How many times to try the unit when it raises a retryable error (default 1: no retry)."""


class LocalAgent(DurableAgent[AgentDepsT, OutputDataT]):
    """A pydantic-ai agent run through the unit contract in-process, without durability."""

    engine = "local"
    capabilities = LOCAL_CAPABILITIES

    def __init__(
        self,
        wrapped: AbstractAgent[AgentDepsT, OutputDataT],
        *,
        unit_config: LocalUnitConfig | None = None,
        model_unit_config: LocalUnitConfig | None = None,
        toolset_unit_configs: Mapping[str, LocalUnitConfig] | None = None,
        tool_unit_configs: Mapping[str, LocalUnitConfig | None] | None = None,
        event_stream_handler_unit_config: LocalUnitConfig | None = None,
        models: Mapping[str, Model | str] | None = None,
        event_stream_handler: EventStreamHandler[AgentDepsT] | None = None,
        parallel_execution_mode: ParallelExecutionMode = "parallel_ordered_events",
        max_payload_bytes: int | None = None,
        require: Iterable[str] = (),
    ) -> None:
        """Wrap `wrapped` to run through units in-process.

        Args:
            wrapped: The agent; it must have a `name`.
            unit_config: Config of every unit.
            model_unit_config: Config of model request units, over `unit_config`.
            toolset_unit_configs: Config per toolset id, over `unit_config`.
            tool_unit_configs: Config per tool name, over its toolset's; `None` runs the tool inline.
            event_stream_handler_unit_config: Config of events units, over `unit_config`.
            models: Models a run may select by name.
            event_stream_handler: Handler for model stream and agent events.
            parallel_execution_mode: How the tool calls of one model response run.
            max_payload_bytes: Reject unit inputs and outputs larger than this, like a real engine would.
            require: Capabilities the engine must have.
        """
        self.max_payload_bytes = max_payload_bytes
        configs = UnitConfigs(
            known_keys=config_keys(LocalUnitConfig),
            config_name="LocalUnitConfig",
            config_type=LocalUnitConfig,
            base=unit_config or {},
            model=model_unit_config or {},
            events=event_stream_handler_unit_config or {},
            toolsets=toolset_unit_configs or {},
            tools=tool_unit_configs or {},
        )
        super().__init__(
            wrapped,
            unit_configs=configs,
            models=models,
            event_stream_handler=event_stream_handler,
            parallel_execution_mode=parallel_execution_mode,
            require=require,
        )

    def in_container(self) -> bool:
        return _IN_CONTAINER.get()

    def new_run_key(self) -> str:
        return f"{self.name}:{uuid.uuid4().hex}"

    async def execute_unit(self, unit: Unit, payload: bytes, config: Mapping[str, Any], label: str) -> bytes:
        attempts = max(1, int(config.get("max_attempts", 1)))
        timeout = config.get("timeout_seconds")
        for attempt in range(1, attempts + 1):
            try:
                with unit_attempt(attempt):
                    return await asyncio.wait_for(unit.body(payload), timeout)
            except Exception as exc:
                if attempt == attempts:
                    raise
                await pause_before_retry(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    async def run_outside_container(self, user_prompt: Any, **kwargs: Any) -> AgentRunResult[Any]:
        token = _IN_CONTAINER.set(True)
        try:
            return await self.run_in_container(user_prompt, **kwargs)
        finally:
            _IN_CONTAINER.reset(token)
