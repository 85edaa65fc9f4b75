"""The natural pattern: a module-level PrefectAgent, a user flow calling it, `serve(...)` under the main guard.

Prefect pickles served flows with the globals they use, so this only works if the PrefectAgent pickles.
Usage: SERVED_AGENT_NAME=<agent name> served_agent.py <interval seconds>. The name comes from the environment because
the process that runs a scheduled flow imports this file with other arguments.
"""

from __future__ import annotations

import os
import sys

from prefect import flow, serve
from pydantic_ai import Agent

from durable_agents.prefect import PrefectAgent, TaskConfig
from durable_agents.testing import tool_loop_model

NAME = os.environ["SERVED_AGENT_NAME"]

agent = Agent(tool_loop_model(2), name=NAME)


@agent.tool_plain
def step(i: int) -> str:
    return f"tick{i}"


prefect_agent = PrefectAgent(agent, model_task_config=TaskConfig(retries=2))


@flow(name=f"report_{NAME}", persist_result=True)
async def daily_report(prompt: str) -> str:
    return (await prefect_agent.run(prompt)).output


if __name__ == "__main__":
    every = float(sys.argv[1])
    serve(
        daily_report.to_deployment(name="user-flow", interval=every, parameters={"prompt": "Today's report"}),
        prefect_agent.to_deployment(name="agent-flow", interval=every, parameters={"user_prompt": "Direct"}),
        limit=2,  # a slow machine must not pile up one process per missed interval
    )
