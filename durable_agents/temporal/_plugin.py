"""`DurableAgentsPlugin`: one temporalio plugin that sets up clients, workers and replayers for durable agents."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import re
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, TypeVar

from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter, DefaultPayloadConverter
from temporalio.plugin import SimplePlugin
from temporalio.worker import WorkerConfig, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from .._policy import FATAL_TYPES
from ..exceptions import ConfigurationError, DuplicateAgentNameError
from ._agent import UNIT_ATTR, TemporalAgent
from ._passthrough import derive_passthrough_modules
from ._tracing import TraceHeaders

__all__ = [
    "AGENTS_ATTR",
    "PASSTHROUGH_MODULES",
    "WORKFLOW_FAILURE_EXCEPTION_TYPES",
    "DurableAgentsPlugin",
    "uses_agents",
]

AGENTS_ATTR = "__durable_agents__"
"""The workflow class attribute that lists the durable agents its runs use (set by `uses_agents`)."""

_WorkflowClass = TypeVar("_WorkflowClass", bound=type)


def uses_agents(*agents: TemporalAgent[Any, Any]) -> Callable[[_WorkflowClass], _WorkflowClass]:
    """Declare on a workflow class the durable agents its runs use, so every worker that runs it registers them.

    ```python
    @uses_agents(temporal_agent)
    @workflow.defn
    class GeographyWorkflow: ...
    ```

    [`DurableAgentsPlugin`][durable_agents.temporal.DurableAgentsPlugin] registers the activities of every agent
    declared by the workflows of the worker it configures. Setting the class attribute
    `__durable_agents__ = [temporal_agent]` in the class body does the same.

    Args:
        *agents: The agents that the workflow runs.
    """

    def declare(cls: _WorkflowClass) -> _WorkflowClass:
        declared: list[TemporalAgent[Any, Any]] = list(getattr(cls, AGENTS_ATTR, ()))
        declared.extend(agent for agent in agents if agent not in declared)
        setattr(cls, AGENTS_ATTR, declared)
        return cls

    return declare


PASSTHROUGH_MODULES: tuple[str, ...] = derive_passthrough_modules()
"""Modules the workflow sandbox imports from the worker instead of re-importing them per workflow run.

They are the libraries whose workflow-side code is deterministic (the agent graph, message types, pydantic,
tracing), or that only build clients without doing I/O in the workflow (model providers), together with every
installed distribution they require, recursively: a library imports its dependencies lazily, and a first import
inside a workflow fails. The list is derived from the installed distributions when this module is imported (see
`durable_agents/temporal/_passthrough.py`). Passing them through avoids the sandbox's import failures and its
per-run re-import cost.

The plugin passes through these and, from the installed package metadata, every installed dependency of
pydantic-ai's extras too (`fastmcp` for `MCPToolset`, model SDKs...) (see `passthrough_modules`), so a toolset
or model built at module level in a workflow module works whatever extras are installed.
"""

# Engines are not libraries the workflow uses: Temporal's own modules are the sandbox's business, and the other
# engines' are never needed in a workflow.
_NOT_PASSED_THROUGH = frozenset({"temporalio", "dbos", "prefect"})


@functools.cache
def passthrough_modules() -> tuple[str, ...]:
    """`PASSTHROUGH_MODULES` and the top-level modules of pydantic-ai's installed dependencies (any extra)."""
    modules = set(PASSTHROUGH_MODULES)
    try:
        requirements = metadata.distribution("pydantic-ai-slim").requires or []
    except metadata.PackageNotFoundError:
        requirements = []
    for requirement in requirements:
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        try:
            dependency = metadata.distribution(name.group(0)) if name else None
        except metadata.PackageNotFoundError:
            continue
        if dependency is not None:
            modules.update(_top_level_modules(dependency))
    return tuple(sorted(modules - _NOT_PASSED_THROUGH))


def _top_level_modules(dist: metadata.Distribution) -> set[str]:
    listed = dist.read_text("top_level.txt")
    if listed:
        return {line.strip() for line in listed.splitlines() if line.strip()}
    modules: set[str] = set()
    for file in dist.files or ():
        parts = file.parts
        if len(parts) == 2 and parts[1] == "__init__.py":  # a package
            modules.add(parts[0])
        elif len(parts) == 1 and parts[0].endswith(".py"):  # a single-module distribution
            modules.add(parts[0].removesuffix(".py"))
    return modules


# anyio imports its asyncio backend on first use. Inside a workflow that first use would import it into the sandbox,
# which refuses its `threading.Thread` subclass; imported here, the workflow gets the worker's module passed through.
importlib.import_module("anyio._backends._asyncio")

WORKFLOW_FAILURE_EXCEPTION_TYPES: tuple[type[BaseException], ...] = FATAL_TYPES
"""Errors that fail the workflow instead of failing (and endlessly retrying) its workflow task.

The error policy's fatal types (`durable_agents._policy.FATAL_TYPES`): `DurableAgentsError` covers
misuse (`ContainerUsageError`, `UnregisteredModelError`...), payloads over the limit and fatal unit
errors; `UserError` and `AgentRunError` (`UnexpectedModelBehavior`, `UsageLimitExceeded`...) are
pydantic-ai's errors that no retry can fix; a value that cannot be serialized stays unserializable.
"""


class DurableAgentsPlugin(SimplePlugin):
    """A temporalio plugin for clients, workers and replayers that run durable agents.

    It sets, wherever it is used:

    - the Pydantic payload converter (workflow arguments and results such as message histories and
      `AgentRunResult` outputs are pydantic types), unless a custom payload converter is already set;
    - the workflow sandbox's pass-through modules
      ([`PASSTHROUGH_MODULES`][durable_agents.temporal.PASSTHROUGH_MODULES] and pydantic-ai's installed
      dependencies);
    - the exception types that fail a workflow instead of retrying its task
      ([`WORKFLOW_FAILURE_EXCEPTION_TYPES`][durable_agents.temporal.WORKFLOW_FAILURE_EXCEPTION_TYPES]);
    - the caller's trace context, carried in the headers of the workflows a client starts, as the parent of the
      durable runs in them (see the Telemetry page of the docs);
    - on workers, the activities of the agents given to it and of the agents that the worker's workflows
      declare ([`uses_agents`][durable_agents.temporal.uses_agents]).

    ```python
    client = await Client.connect("localhost:7233", plugins=[DurableAgentsPlugin()])
    worker = Worker(
        client, task_queue="q", workflows=[MyWorkflow], plugins=[DurableAgentsPlugin(temporal_agent)]
    )
    ```

    A plugin on the client also configures every worker built on that client, so its setup is idempotent:
    the same activity registered twice is registered once.
    """

    def __new__(cls, *agents: TemporalAgent[Any, Any]) -> DurableAgentsPlugin:
        # temporalio warns when a client plugin and a worker plugin have the same type, which is the documented
        # setup here (converter on the client, agents on the worker). Our setup is idempotent, so the plugin that
        # carries agents is a subclass and the warning stays for real duplicates.
        target: type[DurableAgentsPlugin] = _AgentsPlugin if cls is DurableAgentsPlugin and agents else cls
        return super().__new__(target)  # pyright: ignore[reportArgumentType]

    def __init__(self, *agents: TemporalAgent[Any, Any]) -> None:
        """Create the plugin.

        Args:
            *agents: The durable agents whose activities a worker using this plugin runs.

        Raises:
            DuplicateAgentNameError: Two agents share a name (their activities would collide).
        """
        seen: dict[str, TemporalAgent[Any, Any]] = {}
        for agent in agents:
            if not agent.rebuilds(seen.setdefault(agent.name, agent)):
                raise DuplicateAgentNameError(agent.name, "temporal")
        self.agents: tuple[TemporalAgent[Any, Any], ...] = agents
        super().__init__(  # pyright: ignore[reportUnknownMemberType]  # temporalio types activities loosely
            "durable_agents.DurableAgentsPlugin",
            data_converter=_with_pydantic_payloads,
            workflow_runner=_with_passthrough,
            workflow_failure_exception_types=_with_failure_types,
            interceptors=[TraceHeaders()],
        )

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        """Configure a worker as `SimplePlugin` does, then add the activities of its agents and declared agents."""
        config = super().configure_worker(config)
        # temporalio types activities as callables of unknown signature, hence the ignores.
        workflows: Sequence[type] = config.get("workflows") or ()  # pyright: ignore[reportUnknownMemberType]
        agents = _with_sub_agents([*self.agents, *_declared_agents(workflows)])
        if agents:
            existing: Sequence[Callable[..., Any]] = config.get("activities") or ()  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            config["activities"] = _add_activities(existing, agents)
            if workflows:
                # A worker that runs workflows also runs the agents' own workflows: their runs as sub-agents.
                config["workflows"] = _add_workflows(workflows, agents)
        return config


def _declared_agents(workflows: Sequence[type]) -> list[TemporalAgent[Any, Any]]:
    agents: list[TemporalAgent[Any, Any]] = []
    for cls in workflows:
        declared: Sequence[object] = getattr(cls, AGENTS_ATTR, ())
        for agent in declared:
            if not isinstance(agent, TemporalAgent):
                raise ConfigurationError(
                    f"Workflow {cls.__qualname__} declares {agent!r} in {AGENTS_ATTR}, which is not a TemporalAgent. "
                    "Fix: declare the `TemporalAgent` wrappers, not the pydantic-ai agents."
                )
            agents.append(agent)  # pyright: ignore[reportUnknownArgumentType]
    return agents


def _with_sub_agents(agents: Sequence[TemporalAgent[Any, Any]]) -> list[TemporalAgent[Any, Any]]:
    """The agents and, recursively, the sub-agents their tools run (see `durable_agents._delegation`)."""
    found = list(agents)
    for agent in found:  # grows while iterating: sub-agents of sub-agents
        found.extend(sub for sub in agent.sub_agents() if sub not in found and isinstance(sub, TemporalAgent))
    return found


def _add_workflows(existing: Sequence[type], agents: Sequence[TemporalAgent[Any, Any]]) -> list[type]:
    workflows = list(existing)
    names: set[str] = set()
    for agent in agents:
        if agent.name not in names:
            names.add(agent.name)
            workflow_class = agent.temporal_workflow
            if workflow_class not in workflows:
                workflows.append(workflow_class)
    return workflows


def _add_activities(
    existing: Sequence[Callable[..., Any]], agents: Sequence[TemporalAgent[Any, Any]]
) -> list[Callable[..., Any]]:
    activities = list(existing)
    registered: dict[str, Callable[..., Any]] = {
        getattr(fn, UNIT_ATTR): fn for fn in activities if hasattr(fn, UNIT_ATTR)
    }
    owners: dict[str, TemporalAgent[Any, Any]] = {}
    for agent in agents:
        owner = owners.setdefault(agent.name, agent)
        if owner is not agent:
            if agent.rebuilds(owner):
                continue  # the same agent built twice: the activities of the first serve both
            raise DuplicateAgentNameError(agent.name, "temporal")
        for fn in agent.temporal_activities:
            name: str = getattr(fn, UNIT_ATTR)
            other = registered.get(name)
            if other is fn:
                continue
            if other is not None:
                raise DuplicateAgentNameError(agent.name, "temporal")
            registered[name] = fn
            activities.append(fn)
    return activities


class _AgentsPlugin(DurableAgentsPlugin):
    """A `DurableAgentsPlugin` that registers agents (see `DurableAgentsPlugin.__new__`)."""


def _with_pydantic_payloads(existing: DataConverter | None) -> DataConverter:
    converter = existing or DataConverter.default
    if converter.payload_converter_class is DefaultPayloadConverter:
        return dataclasses.replace(converter, payload_converter_class=PydanticPayloadConverter)
    return converter


def _with_passthrough(existing: WorkflowRunner | None) -> WorkflowRunner:
    if existing is None:
        return SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*passthrough_modules())
        )
    if isinstance(existing, SandboxedWorkflowRunner):
        return dataclasses.replace(
            existing, restrictions=existing.restrictions.with_passthrough_modules(*passthrough_modules())
        )
    return existing


def _with_failure_types(existing: Sequence[type[BaseException]] | None) -> Sequence[type[BaseException]]:
    types = list(existing or [])
    types.extend(t for t in WORKFLOW_FAILURE_EXCEPTION_TYPES if t not in types)
    return types
