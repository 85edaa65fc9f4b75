"""Which tool calls of a `TemporalAgent` run as Temporal local activities, chosen and validated at construction."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic_ai.toolsets import FunctionToolset

from .._config import UnitConfigs
from .._toolset import DurableToolset
from ..exceptions import ConfigurationError

__all__ = ["LocalTools"]

# ActivityConfig keys that a local activity does not have. Set on a local tool's own config layer, they would be
# silently dropped, hiding a mistake; set on the base layer (for every activity), they apply to the others.
_REMOTE_ONLY_KEYS = ("task_queue", "heartbeat_timeout")


@dataclass(frozen=True)
class LocalTools:
    """The chosen `(toolset id, tool name)` pairs; `None` in a pair matches any toolset or tool."""

    chosen: frozenset[tuple[str | None, str | None]] = frozenset()

    def covers(self, toolset_id: str | None, tool: str | None) -> bool:
        """Whether a call of `tool` in `toolset_id` runs as a local activity."""
        chosen = self.chosen
        return (None, None) in chosen or (toolset_id, None) in chosen or (toolset_id, tool) in chosen

    @classmethod
    def choose(
        cls,
        agent_name: str,
        leaves: Mapping[str, DurableToolset],
        configs: UnitConfigs,
        tools: Collection[str] | Literal["all"],
        toolsets: Collection[str],
    ) -> LocalTools:
        """Validate `local_activity_tools` / `local_activity_toolsets` against the agent's toolsets and configs.

        Raises:
            ConfigurationError: An unknown tool name or toolset id, a tool that also runs inline, or a local tool
                whose own config sets a key that local activities do not have.
        """
        if isinstance(tools, str) and tools != "all":
            raise ConfigurationError(
                f"local_activity_tools of agent {agent_name!r} must be a collection of tool names or 'all', got "
                f"{tools!r}. Fix: `local_activity_tools=[{tools!r}]`."
            )
        function_tools = {
            tool: toolset_id
            for toolset_id, leaf in leaves.items()
            if leaf.static and isinstance(leaf.wrapped, FunctionToolset)
            for tool in leaf.wrapped.tools
        }
        chosen: set[tuple[str | None, str | None]] = set()
        if tools == "all":
            chosen.add((None, None))
        else:
            unknown = sorted(set(tools) - function_tools.keys())
            if unknown:
                raise ConfigurationError(
                    f"local_activity_tools of agent {agent_name!r} names unknown tools {unknown}; its function tools "
                    f"are {sorted(function_tools)}. Fix: correct the names, or list the toolset's id in "
                    "local_activity_toolsets for tools that are not known before a run (MCP, dynamic toolsets)."
                )
            chosen.update((function_tools[tool], tool) for tool in tools)
        unknown_ids = sorted(set(toolsets) - leaves.keys())
        if unknown_ids:
            raise ConfigurationError(
                f"local_activity_toolsets of agent {agent_name!r} names unknown toolset ids {unknown_ids}; its "
                f"toolsets are {sorted(leaves)}."
            )
        chosen.update((toolset_id, None) for toolset_id in toolsets)
        local = cls(frozenset(chosen))
        for toolset_id, leaf in leaves.items():
            if local.covers(toolset_id, None):
                _check_layer(agent_name, f"toolset {toolset_id!r}", configs.toolsets.get(toolset_id))
            names = list(leaf.wrapped.tools) if isinstance(leaf.wrapped, FunctionToolset) else []
            for tool in names:
                if not local.covers(toolset_id, tool) or tool not in configs.tools:
                    continue
                layer = configs.tools[tool]
                if layer is None and (toolset_id, tool) in chosen:
                    raise ConfigurationError(
                        f"Tool {tool!r} of agent {agent_name!r} runs inline in the workflow "
                        "(tool_activity_config maps it to None), so it cannot also run as a local activity."
                    )
                _check_layer(agent_name, f"tool {tool!r}", layer)  # an inline tool of a local toolset stays inline
        return local


def _check_layer(agent_name: str, where: str, layer: Mapping[str, object] | None) -> None:
    bad = [key for key in _REMOTE_ONLY_KEYS if layer is not None and layer.get(key) is not None]
    if bad:
        raise ConfigurationError(
            f"The ActivityConfig of {where} of agent {agent_name!r} sets {bad}, which local activities do not have "
            "(they run on the workflow's worker and cannot heartbeat). Fix: remove them, or run the tool as a "
            "regular activity."
        )
