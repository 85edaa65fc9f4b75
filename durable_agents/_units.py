"""The boundary contract: which operations of an agent run become units, and what they are called.

A *unit* is one I/O operation that the engine runs and records (a Temporal activity, a DBOS step,
a Prefect task). A *container* is the deterministic code that orchestrates units (a Temporal
workflow, a DBOS workflow, a Prefect flow).

Every unit takes `bytes` and returns `bytes`: the core encodes and decodes both sides
(see `_codec.py`), so an engine adapter only has to move opaque payloads.

Unit names are stable and derived only from the agent name and the toolset id:

| kind | name |
|---|---|
| model request | `<agent>.model` |
| tool call | `<agent>.toolset.<toolset id>.call` |
| toolset listing (MCP, dynamic toolsets) | `<agent>.toolset.<toolset id>.list` |
| event-stream handler delivery | `<agent>.events` |

A per-call *label* adds the tool name (`<agent>.toolset.<id>.call/<tool>`) for logs and UIs.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Unit", "UnitBody", "UnitKind", "UnitLabel", "parse_unit_label", "unit_name"]


class UnitKind(enum.StrEnum):
    """What a unit does."""

    MODEL = "model"
    """One model request; runs the event-stream handler on the live stream when one is set."""
    TOOL = "call"
    """One tool call of a toolset."""
    LIST = "list"
    """Listing the tools of a toolset whose tool list is I/O (MCP servers, dynamic toolsets)."""
    EVENTS = "events"
    """Delivering a batch of agent-level events to the event-stream handler."""


UnitBody = Callable[[bytes], Awaitable[bytes]]
"""The code of a unit: encoded input in, encoded output out."""


def unit_name(agent_name: str, kind: UnitKind, toolset_id: str | None = None) -> str:
    """The stable name of a unit.

    Args:
        agent_name: The wrapped agent's name.
        kind: What the unit does.
        toolset_id: The toolset's id, for tool and listing units.
    """
    if kind in (UnitKind.TOOL, UnitKind.LIST):
        if toolset_id is None:
            raise ValueError("tool and listing units need a toolset id")
        return f"{agent_name}.toolset.{toolset_id}.{kind.value}"
    return f"{agent_name}.{kind.value}"


@dataclass(frozen=True)
class UnitLabel:
    """A unit name or per-call label read back from an engine's record (see `parse_unit_label`)."""

    agent: str
    """The agent the unit belongs to."""
    kind: UnitKind
    """What the unit does."""
    toolset_id: str | None = None
    """For tool and listing units: the toolset."""
    detail: str | None = None
    """What the label adds after `/`: the tool name of a tool call, `history` for a model unit's history piece."""


_TOOLSET_UNIT = re.compile(r"^(?P<agent>.+?)\.toolset\.(?P<toolset>.+)\.(?P<kind>call|list)$")


def parse_unit_label(label: str) -> UnitLabel | None:
    """Read a unit name or label back (`<agent>.model`, `<agent>.toolset.<id>.call/<tool>`, ...).

    The inverse of [`unit_name`][durable_agents._units.unit_name], for tools that read an engine's record of a run
    (the operations CLI). `None` for a name that is not one of ours (a user's own activity, step or task).

    Args:
        label: An activity type, step name or task run name.
    """
    name, _, detail = label.partition("/")
    if match := _TOOLSET_UNIT.match(name):
        kind = UnitKind.TOOL if match["kind"] == "call" else UnitKind.LIST
        return UnitLabel(match["agent"], kind, match["toolset"], detail or None)
    for kind in (UnitKind.MODEL, UnitKind.EVENTS):
        agent = name.removesuffix(f".{kind.value}")
        if agent and agent != name:
            return UnitLabel(agent, kind, None, detail or None)
    return None


@dataclass(frozen=True)
class Unit:
    """One registered unit of a durable agent: what engine adapters turn into activities, steps or tasks."""

    name: str
    """Stable name, see [`unit_name`][durable_agents._units.unit_name]."""
    kind: UnitKind
    """What the unit does."""
    body: UnitBody = field(compare=False, repr=False)
    """The code to run inside the unit."""
    config: Mapping[str, Any] = field(default_factory=dict[str, Any], compare=False)
    """The unit's engine config, layered base -> model/toolset (per-tool config is resolved per call)."""
    toolset_id: str | None = None
    """For tool and listing units: the toolset they belong to."""
