"""The local engine: a plain-asyncio reference implementation of the unit contract, with no durability.

Every run goes through the same units, names, serialization, size checks and config layering as
the real engines, so a bug in the core shows up here first. Use it in tests, and where an agent
should behave the same with or without an engine.

```python
from durable_agents.local import LocalAgent

local_agent = LocalAgent(agent)
result = await local_agent.run("What is the capital of Mexico?")
```
"""

from ._agent import LocalAgent, LocalUnitConfig

__all__ = ["LocalAgent", "LocalUnitConfig"]
