"""`TaskConfig`: the Prefect task options a unit of a `PrefectAgent` can take, and how they reach Prefect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypedDict

from prefect.cache_policies import CachePolicy
from prefect.client.schemas.objects import State, TaskRun
from prefect.filesystems import WritableFileSystem
from prefect.tasks import Task
from pydantic import Field

__all__ = ["TaskConfig"]


class TaskConfig(TypedDict, total=False):
    """Options of the Prefect task that runs one unit (model request, tool call, MCP listing, event delivery).

    Every key mirrors the argument of the same name of `prefect.task`. Configs are layered as the core
    defines (`task_config` -> `model_task_config` / `event_stream_handler_task_config` /
    `toolset_task_configs[id]` -> `tool_task_config_by_name[name]`); a later layer overrides only the keys
    it sets. Every value is checked against its key's type and bounds when the `PrefectAgent` is built
    ([`InvalidConfigValueError`][durable_agents.exceptions.InvalidConfigValueError]). Errors that cannot
    heal (our `DurableAgentsError`s, pydantic-ai `UserError`, 4xx model API errors) are never retried,
    whatever `retries` says.
    """

    retries: Annotated[int, Field(ge=0)]
    """How many times Prefect retries the task after a retryable error (default 0)."""
    retry_delay_seconds: Annotated[float, Field(ge=0)] | list[Annotated[float, Field(ge=0)]]
    """Seconds to wait before each retry: one number for every retry, or one per retry."""
    retry_condition_fn: Callable[[Task[..., Any], TaskRun, State[Any]], bool]
    """Called with the task, its run and the failed state; return `False` to stop retrying."""
    timeout_seconds: Annotated[float, Field(gt=0)]
    """Fail the attempt (and retry it, if retries remain) when it runs longer than this."""
    cache_policy: CachePolicy
    """How a completed unit is found again. The default,
    [`RUN_SCOPED`][durable_agents.prefect.RUN_SCOPED], only reuses results within the same flow run
    (resume, Prefect retry); [`CROSS_RUN`][durable_agents.prefect.CROSS_RUN] also shares them between runs
    with the same inputs; `prefect.cache_policies.NO_CACHE` turns caching off (no resume)."""
    persist_result: bool
    """Store the unit's output in result storage (default `True`: resuming a flow run needs it)."""
    result_storage: WritableFileSystem | str
    """Where outputs are stored (a block or a block slug); default: Prefect's local storage."""
    log_prints: bool
    """Send `print()` output of the unit to the Prefect logger."""
    cache_expiration: timedelta | None
    """How long a unit's stored result can be reused by a resume, a flow retry or
    [`CROSS_RUN`][durable_agents.prefect.CROSS_RUN] (default 7 days); `None` keeps it for ever. Resuming a run
    after its results expired runs its completed units again."""
