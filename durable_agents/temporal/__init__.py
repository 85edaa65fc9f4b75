"""Durable pydantic-ai agents on Temporal: the agent graph runs in a workflow, every I/O operation in an activity.

```python
from temporalio import workflow
from durable_agents.temporal import ActivityConfig, DurableAgentsPlugin, TemporalAgent

temporal_agent = TemporalAgent(
    agent, model_activity_config=ActivityConfig(start_to_close_timeout=timedelta(minutes=2))
)


@workflow.defn
class GeographyWorkflow:
    @workflow.run
    async def run(self, prompt: str) -> str:
        return (await temporal_agent.run(prompt)).output
```

Connect the client with `plugins=[DurableAgentsPlugin()]` and start the worker with
`plugins=[DurableAgentsPlugin(temporal_agent)]`, or declare the agent on the workflow with
`@uses_agents(temporal_agent)`. See the Temporal page of the docs.
"""

try:
    import temporalio  # noqa: F401  # pyright: ignore[reportUnusedImport]
except ImportError as e:  # pragma: no cover
    raise ImportError(
        "durable_agents.temporal needs the Temporal SDK. "
        "Install it with: pip install 'durable-pydantic-agents[temporal]'"
    ) from e

from temporalio.workflow import ActivityConfig

from ._agent import DEFAULT_MAX_PAYLOAD_BYTES, TemporalAgent
from ._continue import HistoryLimit, HistoryLimitReached, history_is_large
from ._defaults import DEFAULT_ACTIVITY_CONFIGS, DEFAULT_SCHEDULE_TO_START_TIMEOUT
from ._history_size import HistoryStats, history_stats
from ._plugin import PASSTHROUGH_MODULES, WORKFLOW_FAILURE_EXCEPTION_TYPES, DurableAgentsPlugin, uses_agents
from ._replay import ReplayFailure, ReplayReport, check_replay

__all__ = [
    "DEFAULT_ACTIVITY_CONFIGS",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_SCHEDULE_TO_START_TIMEOUT",
    "PASSTHROUGH_MODULES",
    "WORKFLOW_FAILURE_EXCEPTION_TYPES",
    "ActivityConfig",
    "DurableAgentsPlugin",
    "HistoryLimit",
    "HistoryLimitReached",
    "HistoryStats",
    "ReplayFailure",
    "ReplayReport",
    "TemporalAgent",
    "check_replay",
    "history_is_large",
    "history_stats",
    "uses_agents",
]
