"""The Temporal side of the parity tests: every scenario agent wrapped, and one workflow that runs any of them."""

from __future__ import annotations

from temporalio import workflow

from durable_agents.temporal import TemporalAgent

from .scenarios import AGENTS, HANDLERS, bad_run_input

TEMPORAL_AGENTS = {
    name: TemporalAgent(agent, event_stream_handler=HANDLERS.get(name)) for name, agent in AGENTS.items()
}


@workflow.defn
class ParityWorkflow:
    @workflow.run
    async def run(self, name: str, prompt: str, case: str = "") -> str:
        if case:
            # Built in the workflow: a value that cannot cross the boundary could not be a workflow argument.
            user_prompt, kwargs = bad_run_input(case, prompt)
            return str((await TEMPORAL_AGENTS[name].run(user_prompt, **kwargs)).output)
        return str((await TEMPORAL_AGENTS[name].run(prompt)).output)
