"""The Temporal side of the parity tests: every scenario agent wrapped, and one workflow that runs any of them."""

from __future__ import annotations

from temporalio import workflow

from durable_agents.temporal import TemporalAgent

from .scenarios import AGENTS, HANDLERS, in_container_code

TEMPORAL_AGENTS = {
    name: TemporalAgent(agent, event_stream_handler=HANDLERS.get(name)) for name, agent in AGENTS.items()
}


@workflow.defn
class ParityWorkflow:
    @workflow.run
    async def run(self, name: str, prompt: str, mode: str = "run") -> str:
        return await in_container_code(TEMPORAL_AGENTS[name], name, prompt, mode)
