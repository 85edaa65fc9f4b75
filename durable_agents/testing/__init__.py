"""Helpers for testing durable agents, and for demos: scripted models, a unit recorder, crash injection.

```python
from durable_agents.testing import record_units, tool_loop_model

agent = Agent(tool_loop_model(rounds=2), name="demo", tools=[step])
with record_units() as units:
    await durable(agent, engine="local").run("go")
assert units.kinds == ["model", "call", "model", "call", "model"]
```
"""

from ._crash import CRASH_ENV, CrashInjected, inject_crash
from ._models import CallCounter, tool_loop_model
from ._openai_server import ChatReply, FakeOpenAIServer, Fault
from ._postgres import PostgresCluster
from ._prefect_server import PrefectServer
from ._recorder import UnitRecorder, record_units

__all__ = [
    "CRASH_ENV",
    "CallCounter",
    "ChatReply",
    "CrashInjected",
    "FakeOpenAIServer",
    "Fault",
    "PostgresCluster",
    "PrefectServer",
    "UnitRecorder",
    "inject_crash",
    "record_units",
    "tool_loop_model",
]
