"""The Prefect engine: agent runs are Prefect flows, model requests and tool calls are Prefect tasks.

```python
from durable_agents.prefect import PrefectAgent, TaskConfig

prefect_agent = PrefectAgent(
    agent, model_task_config=TaskConfig(retries=3, retry_delay_seconds=[1.0, 2.0, 4.0])
)
result = await prefect_agent.run("What is the capital of Mexico?")
```
"""

try:
    import prefect as _prefect  # noqa: F401  # pyright: ignore[reportUnusedImport]
except ImportError as _e:  # pragma: no cover
    raise ImportError(
        "durable_agents.prefect needs Prefect. Install it with: pip install 'durable-pydantic-agents[prefect]'"
    ) from _e

from ._agent import PrefectAgent
from ._cache import CROSS_RUN, RUN_SCOPED, CrossRunCache, RunScopedCache, project_message, unit_fingerprint
from ._config import TaskConfig

__all__ = [
    "CROSS_RUN",
    "RUN_SCOPED",
    "CrossRunCache",
    "PrefectAgent",
    "RunScopedCache",
    "TaskConfig",
    "project_message",
    "unit_fingerprint",
]
