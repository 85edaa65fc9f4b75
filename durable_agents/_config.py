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
is built, and so is every value, against its key's annotation in that type (strictly: `"3"` is not an
`int`; bounds written as `Annotated[int, Ge(1)]` apply too), so a typo or a wrong value fails at
construction instead of mid-run, and the caller's dicts are never mutated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError

from .exceptions import InvalidConfigValueError, UnknownConfigKeyError

__all__ = ["UnitConfigs", "check_layer", "config_keys"]

_STRICT = ConfigDict(strict=True, arbitrary_types_allowed=True, allow_inf_nan=False)


def config_keys(config_type: type[Any]) -> frozenset[str]:
    """The keys a `TypedDict` config type accepts."""
    required: frozenset[str] = getattr(config_type, "__required_keys__", frozenset())
    optional: frozenset[str] = getattr(config_type, "__optional_keys__", frozenset())
    keys = required | optional
    if not keys:
        raise TypeError(f"{config_type!r} is not a TypedDict config type")
    return keys


@functools.cache
def _value_checks(config_type: type[Any]) -> dict[str, tuple[Callable[[Any], str | None], str]]:
    """Per key of a `TypedDict` config type: a check that says what is wrong with a value (or `None`), and the type."""
    plain = get_type_hints(config_type)
    return {
        key: (_value_check(hint), _type_label(plain[key]))
        for key, hint in get_type_hints(config_type, include_extras=True).items()
    }


def _type_label(hint: Any) -> str:
    return hint.__qualname__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def _value_check(hint: Any) -> Callable[[Any], str | None]:
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(hint, config=_STRICT)
    except Exception:
        # A dataclass or model (Prefect's `CachePolicy`...) carries its own pydantic config: an instance check.
        if isinstance(hint, type):
            cls: type[Any] = hint
            return lambda value: None if isinstance(value, cls) else f"expected an instance of {cls.__qualname__}"
        return lambda value: None  # pragma: no cover  # no config type of ours has such a key

    def check(value: Any) -> str | None:
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            return "; ".join(dict.fromkeys(error["msg"] for error in exc.errors()))
        return None

    return check


def check_layer(
    cfg: Mapping[str, Any], layer: str, known_keys: frozenset[str], config_name: str, config_type: type[Any] | None
) -> None:
    """Refuse a config layer with an unknown key, or (given the config type) a value that does not fit its key.

    Raises:
        UnknownConfigKeyError: A key is not one of `known_keys`, or `cfg` is not a dict.
        InvalidConfigValueError: A value does not validate, strictly, against its key's annotation.
    """
    if not isinstance(cfg, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise UnknownConfigKeyError(f"the {layer} {config_name} (not a dict: {cfg!r})", [], sorted(known_keys))
    unknown = sorted(k for k in cfg if k not in known_keys)
    if unknown:
        raise UnknownConfigKeyError(f"the {layer} {config_name}", unknown, sorted(known_keys))
    if config_type is None:
        return
    checks = _value_checks(config_type)
    for key, value in cfg.items():
        check, expected = checks[key]
        problem = check(value)
        if problem is not None:
            raise InvalidConfigValueError(f"the {layer} {config_name}", key, value, problem, expected)


@dataclass(frozen=True)
class UnitConfigs:
    """The layered unit configs of one durable agent, validated at construction."""

    known_keys: frozenset[str]
    """The keys the engine's config type accepts."""
    config_name: str = "unit config"
    """How errors name the config type, e.g. `StepConfig`."""
    config_type: type[Any] | None = None
    """The engine's `TypedDict` config type; when given, every value is checked against its key's annotation."""
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
        check_layer(cfg, layer, self.known_keys, self.config_name, self.config_type)

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
