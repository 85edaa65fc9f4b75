"""A real HTTP model (pydantic-ai's OpenAI model against a loopback server): retries and faults per unit config."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelAPIError
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from durable_agents.local import LocalAgent
from durable_agents.testing import FakeOpenAIServer, record_units


def http_agent(server: FakeOpenAIServer) -> Agent[None, str]:
    # The SDK's own retries are off, so every retry seen here is the engine's (the unit config's).
    client = AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    return Agent(OpenAIChatModel("fake", provider=OpenAIProvider(openai_client=client)), name="http")


async def test_transient_errors_are_retried_per_unit_config() -> None:
    with FakeOpenAIServer(faults=[503, 503]) as server:
        agent = LocalAgent(http_agent(server), model_unit_config={"max_attempts": 3})
        with record_units() as units:
            result = await agent.run("hello")
    assert result.output == "echo: hello"
    assert server.statuses == [503, 503, 200]
    assert units.kinds == ["model", "model", "model"]


async def test_retry_budget_is_respected() -> None:
    with FakeOpenAIServer(faults=[503, 503, 503]) as server:
        agent = LocalAgent(http_agent(server), model_unit_config={"max_attempts": 2})
        with pytest.raises(ModelAPIError):
            await agent.run("hello")
    assert server.statuses == [503, 503]


async def test_client_errors_are_not_retried() -> None:
    with FakeOpenAIServer(faults=[400]) as server:
        agent = LocalAgent(http_agent(server), model_unit_config={"max_attempts": 5})
        with pytest.raises(ModelAPIError) as info:
            await agent.run("hello")
    assert getattr(info.value, "status_code", None) == 400 and info.value.model_name == "fake"
    assert server.statuses == [400]
