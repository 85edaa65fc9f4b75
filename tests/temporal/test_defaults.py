"""Activity defaults per unit kind, config checks, and agents declared on workflow classes (no server needed)."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel
from temporalio.common import RetryPolicy

from durable_agents import UnitKind
from durable_agents.exceptions import ConfigurationError, DuplicateAgentNameError
from durable_agents.temporal import (
    DEFAULT_ACTIVITY_CONFIGS,
    DEFAULT_SCHEDULE_TO_START_TIMEOUT,
    PASSTHROUGH_MODULES,
    ActivityConfig,
    DurableAgentsPlugin,
    TemporalAgent,
    uses_agents,
)
from durable_agents.temporal._defaults import with_defaults
from durable_agents.temporal._passthrough import derive_passthrough_modules
from durable_agents.temporal._plugin import (  # pyright: ignore[reportPrivateUsage]
    _add_activities,
    _declared_agents,
    _with_sub_agents,
)


def _activity_names(plugin: DurableAgentsPlugin, workflows: list[type]) -> list[str]:
    # What `configure_worker` registers, without the rest of a worker's set-up (which needs a connected client).
    agents = _with_sub_agents([*plugin.agents, *_declared_agents(workflows)])
    return [getattr(fn, "__temporal_activity_definition").name for fn in _add_activities([], agents)]


def test_the_plugin_registers_declared_agents_once() -> None:
    agent = TemporalAgent(Agent(TestModel(), name="declared_once"))

    @uses_agents(agent)
    class First: ...

    class Second:
        __durable_agents__: ClassVar[list[object]] = [agent]

    names = _activity_names(DurableAgentsPlugin(agent), [First, Second])
    assert names == [*(unit.name for unit in agent.units), "declared_once.ask"]
    assert "declared_once.model" in names
    assert _activity_names(DurableAgentsPlugin(), [object]) == []


def _helper(name: str, instructions: str) -> TemporalAgent[None, str]:
    """An application's helper: every agent it builds is wrapped on the same source line."""
    return TemporalAgent(Agent(TestModel(), name=name, instructions=instructions))


def test_an_agent_built_twice_registers_once_and_another_agent_of_its_name_is_refused() -> None:
    first, again = _helper("built_twice", "Be brief."), _helper("built_twice", "Be brief.")
    assert _activity_names(DurableAgentsPlugin(first, again), []) == [*(u.name for u in first.units), "built_twice.ask"]
    with pytest.raises(DuplicateAgentNameError, match="built_twice"):
        DurableAgentsPlugin(first, _helper("built_twice", "Be verbose."))


def test_declaring_a_plain_agent_is_refused() -> None:
    class Wrong:
        __durable_agents__: ClassVar[list[object]] = [Agent(TestModel(), name="plain")]

    with pytest.raises(ConfigurationError, match="not a TemporalAgent"):
        _activity_names(DurableAgentsPlugin(), [Wrong])


def test_defaults_fill_only_the_keys_no_layer_sets() -> None:
    model = with_defaults(UnitKind.MODEL, {"retry_policy": None, "heartbeat_timeout": timedelta(seconds=5)})
    assert model["retry_policy"] is None  # explicitly left to Temporal
    assert model["heartbeat_timeout"] == timedelta(seconds=5)
    assert model["start_to_close_timeout"] == timedelta(minutes=10)
    assert model["schedule_to_start_timeout"] == DEFAULT_SCHEDULE_TO_START_TIMEOUT
    tool = with_defaults(UnitKind.TOOL, {"schedule_to_close_timeout": timedelta(seconds=90)})
    assert "start_to_close_timeout" not in tool  # Temporal needs one of the two, and one is set
    assert tool["retry_policy"] == DEFAULT_ACTIVITY_CONFIGS[UnitKind.TOOL]["retry_policy"]
    for kind in UnitKind:
        policy = DEFAULT_ACTIVITY_CONFIGS[kind]["retry_policy"]
        assert policy is not None and policy.maximum_attempts > 0  # bounded: no endless paid retries


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (ActivityConfig(start_to_close_timeout=timedelta(0)), "'start_to_close_timeout' must be positive"),
        (ActivityConfig(heartbeat_timeout=timedelta(seconds=-1)), "'heartbeat_timeout' must be positive"),
        (ActivityConfig(schedule_to_start_timeout=30), "must be a datetime.timedelta"),  # pyright: ignore[reportArgumentType]
        (ActivityConfig(retry_policy=RetryPolicy(backoff_coefficient=0.5)), "Backoff coefficient"),
        (ActivityConfig(retry_policy=RetryPolicy(maximum_attempts=-1)), "Maximum attempts"),
    ],
)
def test_nonsense_configs_are_refused_when_the_wrapper_is_built(config: ActivityConfig, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        TemporalAgent(Agent(TestModel(), name="nonsense"), model_activity_config=config)


def test_a_passed_through_library_brings_its_installed_dependencies() -> None:
    # logfire imports rich (a requirement) and attrs (an optional integration) lazily, inside the workflow.
    assert {"logfire", "rich", "attrs", "opentelemetry", "pydantic_ai", "httpx", "httpx2"} <= set(PASSTHROUGH_MODULES)
    # A dependency of a dependency comes too: pydantic-ai -> pydantic -> pydantic-core.
    assert "pydantic_core" in derive_passthrough_modules({"pydantic-ai-slim": ("pydantic_ai",)}, {})
    # Requirements of extras do not (pydantic-ai-slim[temporal] requires temporalio); absent libraries add their
    # modules and nothing else.
    assert "temporalio" not in PASSTHROUGH_MODULES
    assert derive_passthrough_modules({"not-installed-lib": ("nil",)}, {}) == ("nil",)


def test_our_own_distribution_is_passed_through_with_its_dependencies() -> None:
    # Renaming the distribution must not silently drop our own requirements (httpx) from the list.
    from durable_agents.temporal._passthrough import PASSTHROUGH_LIBRARIES

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] in PASSTHROUGH_LIBRARIES
