"""The engine-neutral surface: registry, capabilities, durable(), configure()."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_ai import Agent

import durable_agents
from durable_agents import EngineCapabilities, available_engines, configure, durable, get_engine, register_engine
from durable_agents.exceptions import ConfigurationError, EngineNotAvailableError
from durable_agents.local import LocalAgent
from durable_agents.testing import record_units, tool_loop_model


def make_agent() -> Agent[None, str]:
    agent = Agent(tool_loop_model(1), name="reg")

    @agent.tool_plain
    def step(i: int) -> str:
        return "ok"

    return agent


def test_four_builtin_engines_are_listed() -> None:
    engines = {e.name: e for e in available_engines()}
    assert {"local", "dbos", "temporal", "prefect"} <= set(engines)
    assert engines["local"].installed
    for name in ("dbos", "temporal", "prefect"):
        assert f"durable-pydantic-agents[{name}]" in engines[name].install_hint
    assert engines["dbos"].capabilities.durable and not engines["local"].capabilities.durable


def test_engine_not_installed_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "dbos" else real(name, *a))
    info = get_engine("dbos")
    assert not info.installed
    with pytest.raises(EngineNotAvailableError, match=r"pip install 'durable-pydantic-agents\[dbos\]'"):
        durable(make_agent(), engine="dbos")


def test_unknown_engine() -> None:
    with pytest.raises(EngineNotAvailableError, match=r"Unknown engine 'nope'.*register_engine"):
        durable(make_agent(), engine="nope")


async def test_custom_engine_is_usable_through_durable() -> None:
    built: list[str] = []

    class TracingAgent(LocalAgent[Any, Any]):
        engine = "tracing"

    def factory(agent: Agent[Any, Any], **options: Any) -> TracingAgent:
        built.append(str(agent.name))
        return TracingAgent(agent, **options)

    register_engine("tracing", factory, capabilities=EngineCapabilities(parallel_tools=True), replace=True)
    assert "tracing" in [e.name for e in available_engines()]
    wrapped = durable(make_agent(), engine="tracing", unit_config={"max_attempts": 2})
    with record_units() as units:
        result = await wrapped.run("go")
    assert built == ["reg"] and result.output == "done: ok"
    assert units.labels == ["reg.model", "reg.toolset.agent.call/step", "reg.model"]
    with pytest.raises(EngineNotAvailableError, match="already registered"):
        register_engine("tracing", factory, capabilities=EngineCapabilities())


def test_a_factory_that_returns_no_durable_agent_is_refused() -> None:
    # `durable()` is typed to return a DurableAgent for any engine name; a factory that breaks that is named.
    def factory(agent: Agent[Any, Any], **options: Any) -> Any:
        return agent

    register_engine("plain", factory, capabilities=EngineCapabilities(), replace=True)
    with pytest.raises(
        ConfigurationError, match=r"engine 'plain' returned a 'Agent' object, not a durable agent\. Fix:"
    ):
        durable(make_agent(), engine="plain")


def test_configure_sets_the_default_engine() -> None:
    with pytest.raises(EngineNotAvailableError, match="No engine named"):
        durable(make_agent())
    configure(engine="local", engine_options={"unit_config": {"max_attempts": 3}})
    try:
        wrapped = durable(make_agent())
        assert isinstance(wrapped, LocalAgent)
        assert wrapped.unit_configs.for_model() == {"max_attempts": 3}
    finally:
        configure()


def test_root_package_imports_no_engine() -> None:
    import subprocess
    import sys

    code = "import sys, durable_agents; print(sorted(m for m in ('dbos','temporalio','prefect') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert durable_agents.__version__
