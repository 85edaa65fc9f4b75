"""Per-unit engine config, layered in one documented order.

Each engine has its own config type (temporalio's `ActivityConfig`, our `StepConfig`, our
`TaskConfig`), always a `TypedDict`. The core only merges dicts, so it serves all of them:

1. `base`: applies to every unit;
2. then one of `model` (model requests), `events` (event-stream handler delivery) or
   `toolsets[toolset_id]` (tool calls and listings of that toolset);
3. then, for a tool call, `tools[tool_name]`.

A later layer overrides the keys it sets and keeps the others. `tools[tool_name] = None` opts the
tool out: it runs inline in the container instead of as a unit (only safe for deterministic, I/O
free tools). Every key of every layer is checked against the engine's config type when the wrapper
is built, so a typo fails at construction, and the caller's dicts are never mutated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import UnknownConfigKeyError

__all__ = ["UnitConfigs", "config_keys"]


def config_keys(config_type: type[Any]) -> frozenset[str]:
    """The keys a `TypedDict` config type accepts."""
    required: frozenset[str] = getattr(config_type, "__required_keys__", frozenset())
    optional: frozenset[str] = getattr(config_type, "__optional_keys__", frozenset())
    keys = required | optional
    if not keys:
        raise TypeError(f"{config_type!r} is not a TypedDict config type")
    return keys


@dataclass(frozen=True)
class UnitConfigs:
    """The layered unit configs of one durable agent, validated at construction."""

    known_keys: frozenset[str]
    """The keys the engine's config type accepts."""
    config_name: str = "unit config"
    """How errors name the config type, e.g. `StepConfig`."""
    base: Mapping[str, Any] = field(default_factory=dict[str, Any])
    model: Mapping[str, Any] = field(default_factory=dict[str, Any])
    events: Mapping[str, Any] = field(default_factory=dict[str, Any])
    toolsets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict[str, Mapping[str, Any]])
    tools: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict[str, Mapping[str, Any] | None])

    def __post_init__(self) -> None:
        self._check(self.base, "base")
        self._check(self.model, "model")
        self._check(self.events, "events")
        for toolset_id, cfg in self.toolsets.items():
            self._check(cfg, f"toolset {toolset_id!r}")
        for tool_name, tool_cfg in self.tools.items():
            if tool_cfg is not None:
                self._check(tool_cfg, f"tool {tool_name!r}")

    def _check(self, cfg: Mapping[str, Any], layer: str) -> None:
        if not isinstance(cfg, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UnknownConfigKeyError(
                f"the {layer} {self.config_name} (not a dict: {cfg!r})", [], sorted(self.known_keys)
            )
        unknown = sorted(k for k in cfg if k not in self.known_keys)
        if unknown:
            raise UnknownConfigKeyError(f"the {layer} {self.config_name}", unknown, sorted(self.known_keys))

    def for_model(self) -> dict[str, Any]:
        """Config of the model request unit."""
        return {**self.base, **self.model}

    def for_events(self) -> dict[str, Any]:
        """Config of the event-stream handler unit."""
        return {**self.base, **self.events}

    def for_toolset(self, toolset_id: str) -> dict[str, Any]:
        """Config of a toolset's units (listing, and tool calls before per-tool config)."""
        return {**self.base, **self.toolsets.get(toolset_id, {})}

    def for_tool(self, toolset_id: str, tool_name: str) -> dict[str, Any] | None:
        """Config of one tool call, or `None` if the tool opted out and runs inline in the container."""
        if tool_name in self.tools:
            tool_cfg = self.tools[tool_name]
            if tool_cfg is None:
                return None
            return {**self.for_toolset(toolset_id), **tool_cfg}
        return self.for_toolset(toolset_id)
