"""durable_agents: pydantic-ai agents that survive crashes, restarts and deploys.

The root package is engine-neutral and imports no engine. Wrap an agent with the engine's
wrapper (`durable_agents.dbos.DBOSAgent`, `durable_agents.temporal.TemporalAgent`,
`durable_agents.prefect.PrefectAgent`, `durable_agents.local.LocalAgent`) or by name:

```python
from durable_agents import durable

durable_agent = durable(agent, engine="dbos")
```
"""

import logging

from ._agent import DurableAgent, ParallelExecutionMode
from ._approvals import approve
from ._config import UnitConfigs
from ._engine import (
    EngineCapabilities,
    EngineInfo,
    available_engines,
    configure,
    durable,
    get_engine,
    register_engine,
)
from ._external import fail_external_event, resolve_external_event
from ._live import LiveEvents
from ._secrets import Secret
from ._units import Unit, UnitKind, unit_name

__all__ = [
    "DurableAgent",
    "EngineCapabilities",
    "EngineInfo",
    "LiveEvents",
    "ParallelExecutionMode",
    "Secret",
    "Unit",
    "UnitConfigs",
    "UnitKind",
    "approve",
    "available_engines",
    "configure",
    "durable",
    "fail_external_event",
    "get_engine",
    "register_engine",
    "resolve_external_event",
    "unit_name",
]

__version__ = "0.1.0"

# Silent unless the application configures logging (see the Telemetry and logging page of the docs).
logging.getLogger("durable_agents").addHandler(logging.NullHandler())
