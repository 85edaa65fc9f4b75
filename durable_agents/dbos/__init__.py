"""The DBOS engine: every agent run is a DBOS workflow, every model request and tool call a DBOS step.

The workflow journal lives in DBOS's system database: SQLite for development, PostgreSQL in
production. After a crash, `DBOS.launch()` in a new process resumes the run from its last
completed step.

```python
from dbos import DBOS
from durable_agents.dbos import DBOSAgent, StepConfig

DBOS(config={"name": "app", "system_database_url": "sqlite:///app.sqlite"})
dbos_agent = DBOSAgent(agent, model_step_config=StepConfig(retries_allowed=True, max_attempts=3))
DBOS.launch()
# run_id= is the workflow id
result = await dbos_agent.run("What is the capital of Mexico?", run_id="question-1")
```
"""

import importlib.util

if importlib.util.find_spec("dbos") is None:  # pragma: no cover
    raise ImportError(
        "durable_agents.dbos needs the DBOS engine. Install it with: pip install 'durable-pydantic-agents[dbos]'"
    )

from ._agent import DBOSAgent
from ._config import StepConfig
from ._version import application_version

__all__ = ["DBOSAgent", "StepConfig", "application_version"]
