"""`StepConfig`: how one DBOS step of a durable agent runs.

The keys mirror the arguments of DBOS's own `@DBOS.step(...)` decorator, so DBOS's documentation
applies unchanged. Configs are layered by the core (see `durable_agents._config`):
`step_config` -> `model_step_config` / `event_stream_handler_step_config` / `mcp_step_config` ->
`toolset_step_configs[id]` -> `tool_step_configs[tool name]`.
"""

from __future__ import annotations

from typing import Annotated, TypedDict

from pydantic import Field

__all__ = ["StepConfig"]


class StepConfig(TypedDict, total=False):
    """Options of one DBOS step (a model request, a tool call, an MCP listing or call, an event delivery).

    Every value is checked against its key's type and bounds when the `DBOSAgent` is built
    ([`InvalidConfigValueError`][durable_agents.exceptions.InvalidConfigValueError]). Errors that retrying
    cannot fix (durable_agents' own errors, pydantic-ai's `UserError` and `UnexpectedModelBehavior`, 4xx
    model API errors other than 408/409/429) are never retried, whatever the config says.
    """

    retries_allowed: bool
    """Retry the step when it raises a retryable error. DBOS's default is `False`: one attempt."""
    interval_seconds: Annotated[float, Field(ge=0)]
    """Seconds to wait before the first retry (DBOS default 1.0)."""
    max_attempts: Annotated[int, Field(ge=1)]
    """How many attempts in total, the first included, before the step fails for good (DBOS default 3)."""
    backoff_rate: Annotated[float, Field(gt=0)]
    """Multiplier of the wait after each failed attempt; 2.0 doubles it every time (DBOS default 2.0)."""
    timeout_seconds: Annotated[float, Field(gt=0)] | None
    """Cancel an attempt that runs longer than this and fail it with `DBOSStepTimeoutError`; `None` (the default):
    no limit."""
