"""A 4-round tool agent run as a Prefect flow; `start` may be crashed by DURABLE_AGENTS_CRASH, `resume <id>` resumes.

Model requests are counted in `<dir>/model.log`, tool executions in `<dir>/tools.log`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pydantic_ai import Agent

from durable_agents.prefect import PrefectAgent
from durable_agents.testing import CallCounter, inject_crash, tool_loop_model

WORK = Path(sys.argv[2] if sys.argv[1] == "start" else sys.argv[3])
NAME = sys.argv[-1]

agent = Agent(tool_loop_model(4, counter=CallCounter(WORK / "model.log")), name=NAME)


@agent.tool_plain
def step(i: int) -> str:
    with (WORK / "tools.log").open("a") as f:
        f.write(f"{i}\n")
    return f"r{i}"


prefect_agent = PrefectAgent(agent)


async def main() -> None:
    inject_crash()
    if sys.argv[1] == "start":
        result = await prefect_agent.run("go")
    else:
        result = await prefect_agent.resume(sys.argv[2])
    (WORK / "output.txt").write_text(result.output)


if __name__ == "__main__":
    asyncio.run(main())
