"""A durable agent's fingerprint: a digest of everything a recorded run depends on to replay the same way.

Engines that recover a run only on code of the same version (DBOS's application version) derive that version
from it, so a deploy that changes a tool's code, the instructions or the output type starts a new version,
and a deploy that changes nothing the agent runs keeps it.

What goes in, for every agent: its name, the unit protocol version
([`PROTOCOL_VERSION`][durable_agents._frames.PROTOCOL_VERSION]), the unit names, the model (and the models
registered with `models=`), the deps and output types, static instructions and system prompts (and the code
of dynamic ones), and for every function tool its name, description, JSON schema, signature and source
(`inspect.getsource` where the source file is there, else the bytes of its code object). MCP servers and
dynamic toolsets contribute their id and class: their tools are only known at run time.

The digest is the same in every process that runs the same code: nothing in it is an object id or address,
and every collection is sorted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import re
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from pydantic import TypeAdapter
from pydantic_ai.agent import AbstractAgent
from pydantic_ai.models import Model
from pydantic_ai.toolsets import AbstractToolset, FunctionToolset

from ._frames import PROTOCOL_VERSION

__all__ = ["agent_fingerprint", "code_fingerprint", "digest"]

# Object reprs carry addresses (`<object at 0x7f...>`), which differ in every process.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def digest(parts: Iterable[str]) -> str:
    """A hex digest of `parts`, in the order given (sort them first where order is not meaningful)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode())
        hasher.update(b"\0")
    return hasher.hexdigest()


def code_fingerprint(function: Callable[..., Any]) -> str:
    """The source of `function` (through decorators that set `__wrapped__`), or the bytes of its code object."""
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        code = getattr(inspect.unwrap(function), "__code__", None)
        if isinstance(code, types.CodeType):
            return _code_bytes(code)
        return _scrub(repr(function))


def _code_bytes(code: types.CodeType) -> str:
    # The bytecode and its constants (nested functions included), not the file name or line numbers: those
    # change when the code moves, not when it changes.
    consts = [_code_bytes(c) if isinstance(c, types.CodeType) else _const(c) for c in code.co_consts]
    return json.dumps([code.co_code.hex(), list(code.co_names), consts])


def _const(value: object) -> str:
    if isinstance(value, frozenset):  # a set's order changes with the process's hash seed
        members = cast(frozenset[object], value)
        return "frozenset(" + ",".join(sorted(_const(v) for v in members)) + ")"
    if isinstance(value, tuple):
        return "(" + ",".join(_const(v) for v in cast(tuple[object, ...], value)) + ")"
    return _scrub(repr(value))


def _scrub(text: str) -> str:
    return _ADDRESS.sub("", text)


def _describe(value: object) -> object:
    """A JSON-able, process-independent description of a type, function, string or spec object."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Model):
        model = cast(Model[Any], value)
        return f"{_qualname(type(model))}:{model.model_name}"
    if isinstance(value, type):
        try:
            schema: object = TypeAdapter(value).json_schema()
        except Exception:  # not a type pydantic can describe (deps may be any class): its name says enough
            schema = None
        return {"type": _qualname(value), "schema": schema}
    if isinstance(value, Mapping):
        items = cast(Mapping[object, object], value)
        return {str(k): _describe(v) for k, v in sorted(items.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_describe(v) for v in cast(list[object] | tuple[object, ...], value)]
    if callable(value) and hasattr(value, "__code__"):
        return {"function": _qualname(value), "code": code_fingerprint(value)}
    if dataclasses.is_dataclass(value):  # pydantic-ai's output and instruction specs (ToolOutput, ...)
        fields = {f.name: _describe(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"class": _qualname(type(value)), "fields": fields}
    if callable(value):
        return {"callable": _qualname(type(value)), "code": code_fingerprint(value)}  # pyright: ignore[reportUnknownArgumentType]
    return _scrub(repr(value))


def _qualname(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _signature(function: Callable[..., Any]) -> str:
    try:
        return _scrub(str(inspect.signature(function)))
    except (TypeError, ValueError):
        return ""


def _prompts(agent: object) -> dict[str, object]:
    # pydantic-ai keeps an `Agent`'s instructions and system prompts in private fields and has no public
    # accessor; a wrapper agent (or a future pydantic-ai) without them contributes nothing here.
    instructions = [getattr(i, "instruction", i) for i in getattr(agent, "_instructions", ())]
    system_prompts = list(getattr(agent, "_system_prompts", ()))
    prompt_functions = [getattr(r, "function", r) for r in getattr(agent, "_system_prompt_functions", ())]
    return {
        "instructions": _describe(instructions),
        "system_prompts": _describe(system_prompts),
        "system_prompt_functions": _describe(prompt_functions),
    }


def agent_fingerprint(
    agent: AbstractAgent[Any, Any],
    *,
    name: str,
    unit_names: Iterable[str],
    toolsets: Mapping[str, AbstractToolset[Any]],
    models: Mapping[str, Model | str],
) -> str:
    """The fingerprint of a durable agent: a hex digest, the same in every process that runs the same agent code.

    Args:
        agent: The wrapped (plain) agent.
        name: The durable agent's name.
        unit_names: The names of its units.
        toolsets: Its leaf toolsets (the plain ones, not their durable stand-ins), by toolset id.
        models: The models registered with `models=`.
    """
    described: list[dict[str, object]] = []
    for toolset_id, leaf in sorted(toolsets.items()):
        entry: dict[str, object] = {"id": toolset_id, "class": _qualname(type(leaf))}
        if isinstance(leaf, FunctionToolset):
            entry["tools"] = [
                {
                    "name": tool_name,
                    "description": tool.description,
                    "schema": tool.function_schema.json_schema,
                    "signature": _signature(tool.function),
                    "code": code_fingerprint(tool.function),
                }
                for tool_name, tool in sorted(leaf.tools.items())
            ]
        described.append(entry)
    description: dict[str, object] = {
        "protocol": PROTOCOL_VERSION,
        "agent": name,
        "units": sorted(unit_names),
        "model": _describe(agent.model),
        "models": _describe(dict(models)),
        "deps_type": _describe(agent.deps_type),
        "output_type": _describe(agent.output_type),
        "toolsets": described,
        **_prompts(agent),
    }
    return digest([json.dumps(description, sort_keys=True, default=lambda o: _scrub(repr(o)))])
