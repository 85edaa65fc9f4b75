"""Agents with a real OpenAI model (built by the wrappers from `'openai-chat:fake'`, against the loopback server) for
the secrets and model-fault tests, and the Temporal workflows that run them (kept sandbox-importable).

The agents have no model of their own: every wrapper gets `models=MODELS`, a model string that the wrapper
builds itself, in units, from `OPENAI_BASE_URL` / `OPENAI_API_KEY`, which the tests point at a
`FakeOpenAIServer`. What the tool saw is recorded in `SEEN`: units run in the test process on every engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import SecretBytes, SecretStr
from pydantic_ai import Agent, RunContext
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig

from durable_agents import Secret
from durable_agents.temporal import TemporalAgent

REF_ENV = "DA_PARITY_REF_SECRET"
"""The environment variable holding the deps secret passed by reference."""
HEADER_ENV = "DA_PARITY_HEADER_SECRET"
"""The environment variable holding the model-settings secret passed by reference."""
HEADER = "x-parity-token"
"""The request header the model settings set from `HEADER_ENV`."""

SEEN: dict[str, Any] = {}
"""What the `show` tool saw in its deps (cleared by the tests)."""


@dataclass
class SecretDeps:
    token: SecretStr
    blob: SecretBytes
    ref: Secret


def secret_deps(token: str) -> SecretDeps:
    return SecretDeps(token=SecretStr(token), blob=SecretBytes(token.encode()), ref=Secret(REF_ENV))


def secret_settings() -> dict[str, Any]:
    return {"extra_headers": {HEADER: Secret(HEADER_ENV)}}


PLAIN = "answer without tools"
"""The prompt the server answers at once (the fault agent's)."""


def tool_then_answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The loopback server's reply: call `show` once, then answer (at once for the `PLAIN` prompt)."""
    if messages[-1].get("content") == PLAIN or any(m.get("role") == "tool" for m in messages):
        return {"content": "done"}
    return {"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "show", "arguments": "{}"}}]}


secret_agent = Agent(deps_type=SecretDeps, name="parity_secrets")


@secret_agent.tool
def show(ctx: RunContext[SecretDeps]) -> str:
    SEEN["token"] = ctx.deps.token.get_secret_value()
    SEEN["blob"] = ctx.deps.blob.get_secret_value()
    SEEN["ref"] = ctx.deps.ref.get_secret_value()
    return "shown"


fault_agent = Agent(name="parity_faults")

MODELS = {"openai": "openai-chat:fake"}
"""The model every wrapper uses."""

ATTEMPTS = 3
"""Attempts every engine is configured to make for a model request."""

TEMPORAL_SECRET_AGENT = TemporalAgent(secret_agent, models=MODELS)
TEMPORAL_FAULT_AGENT = TemporalAgent(
    fault_agent,
    models=MODELS,
    model_activity_config=ActivityConfig(
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(maximum_attempts=ATTEMPTS, initial_interval=timedelta(milliseconds=100)),
    ),
)


@workflow.defn
class SecretWorkflow:
    @workflow.run
    async def run(self, prompt: str, token: str) -> str:
        result = await TEMPORAL_SECRET_AGENT.run(prompt, deps=secret_deps(token), model_settings=secret_settings())
        return result.output


@workflow.defn
class FaultWorkflow:
    @workflow.run
    async def run(self, prompt: str) -> str:
        return (await TEMPORAL_FAULT_AGENT.run(prompt)).output
