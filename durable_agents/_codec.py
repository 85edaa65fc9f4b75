"""Values that cross the unit boundary inside frames: deps and tool return values.

The frames themselves (one typed, versioned value per unit input and outcome) are `_frames.py`.
Deps use the agent's `deps_type`, through `TypeAdapter`s that are built once per process and cached,
never per payload (building one costs far more than validating with it). The
[`RunContext`][pydantic_ai.tools.RunContext] projection lives in `_context.py`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

import pydantic_core
from pydantic import PydanticSchemaGenerationError, SecretBytes, SecretStr, TypeAdapter
from pydantic import Secret as PydanticSecret
from pydantic_ai import messages as _messages
from pydantic_ai.usage import RunUsage

from ._frames import ReturnOutcome
from .exceptions import PayloadTooLargeError, UnserializableDepsError

__all__ = [
    "DepsCodec",
    "canonical_json",
    "check_size",
    "return_outcome",
    "return_value",
]

USAGE_TA: TypeAdapter[RunUsage] = TypeAdapter(RunUsage)


def check_size(size: int, limit: int | None, what: str, *, fix: str | None = None, at_least: bool = False) -> None:
    """Raise [`PayloadTooLargeError`][durable_agents.exceptions.PayloadTooLargeError] if `size` is over `limit`."""
    if limit is not None and size > limit:
        raise PayloadTooLargeError(what, size, limit, fix=fix, at_least=at_least)


class DepsCodec:
    """Encodes and decodes a run's deps with the agent's `deps_type`."""

    def __init__(self, deps_type: type[Any]) -> None:
        self.deps_type = deps_type
        self._none = deps_type is type(None)
        try:
            self._ta: TypeAdapter[Any] | None = None if self._none else _adapter_for(deps_type)
        except PydanticSchemaGenerationError as exc:
            raise UnserializableDepsError(
                f"The agent's deps_type {_type_name(deps_type)} cannot be serialized: pydantic has no schema for it "
                f"({exc.message.splitlines()[0]}). Units may run in another process, so deps must be data. "
                "Fix: make deps_type a dataclass / pydantic model of plain fields, and keep clients out of deps."
            ) from exc

    def encode(self, deps: Any) -> bytes:
        """Encode deps, or raise [`UnserializableDepsError`][durable_agents.exceptions.UnserializableDepsError]."""
        if self._ta is None:
            if deps is not None:
                raise UnserializableDepsError(
                    f"The agent's deps_type is None but the run got deps of type {type(deps).__name__}. "
                    "Fix: create the agent with `deps_type=...` so the deps can cross the unit boundary."
                )
            return b"null"
        try:
            data = self._ta.dump_json(deps)
            if _MASK in data:
                # pydantic writes `SecretStr` / `SecretBytes` as '**********' in JSON: a tool in a unit would get
                # the mask. Their values are put back where the Python dump still holds the secret objects.
                data = pydantic_core.to_json(_revealed(self._ta.dump_python(deps), pydantic_core.from_json(data)))
            return data
        except (pydantic_core.PydanticSerializationError, TypeError, ValueError) as exc:
            raise UnserializableDepsError(
                f"The run's deps ({type(deps).__name__}) cannot be serialized with the agent's deps_type "
                f"{_type_name(self.deps_type)}: {exc}. Units may run in another process, so deps must be data. "
                "Fix: make deps a dataclass / pydantic model of plain fields, and keep clients (HTTP, DB) out of "
                "deps: create them inside tools or at module level."
            ) from exc

    def check(self, deps: Any) -> bytes:
        """Encode deps and prove they decode again; used before a run starts."""
        data = self.encode(deps)
        try:
            self.decode(data)
        except Exception as exc:
            raise UnserializableDepsError(
                f"The run's deps ({type(deps).__name__}) serialize but do not deserialize as deps_type "
                f"{_type_name(self.deps_type)}: {exc}. Fix: make every field of deps a type pydantic can validate."
            ) from exc
        return data

    def decode(self, data: bytes) -> Any:
        """Decode deps encoded by [`encode`][durable_agents._codec.DepsCodec.encode]."""
        if self._ta is None:
            return None
        return self._ta.validate_json(data)

    def canonical(self, value: Any) -> bytes:
        """Deps given as JSON data, in a canonical JSON form that is the same in every process.

        Their JSON form is not: a `set` field encodes its elements in the process's hash order. The deps are
        validated back into `deps_type` and dumped as Python data, where sets are still sets, then encoded by
        [`canonical_json`][durable_agents._codec.canonical_json].
        """
        if self._ta is None:
            return b"null"
        return canonical_json(self._ta.dump_python(self.decode_value(value)))

    def decode_value(self, value: Any) -> Any:
        """Decode deps that crossed inside a frame, as JSON data (validated in JSON mode, so bytes stay bytes)."""
        if self._ta is None:
            return None
        return self._ta.validate_json(pydantic_core.to_json(value))


_MASK = b'"**********"'
_SECRET_TYPES = (SecretStr, SecretBytes, PydanticSecret)


def _revealed(python: Any, data: Any) -> Any:
    """`data` (a JSON dump) with the value of each pydantic secret in `python` (the Python dump of the same value).

    Both dumps walk the value in the same order, so containers line up item by item.
    """
    if isinstance(python, _SECRET_TYPES):
        return pydantic_core.to_jsonable_python(cast(Any, python).get_secret_value())
    if isinstance(python, dict) and isinstance(data, dict):
        pairs = zip(cast(dict[Any, Any], python).values(), cast(dict[str, Any], data).items(), strict=True)
        return {key: _revealed(p, d) for p, (key, d) in pairs}
    if isinstance(python, list | tuple) and isinstance(data, list):
        return [_revealed(p, d) for p, d in zip(cast(Sequence[Any], python), cast(list[Any], data), strict=True)]
    return data


def canonical_json(value: Any) -> bytes:
    """`value` as JSON with object keys and the elements of sets and frozensets sorted (by their own encoding)."""
    return pydantic_core.to_json(_canonical(value))


def _canonical(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        items = [_canonical(v) for v in cast(set[Any], value)]
        return sorted(items, key=pydantic_core.to_json)
    if isinstance(value, dict):
        pairs = [(pydantic_core.to_jsonable_python(k), _canonical(v)) for k, v in cast(dict[Any, Any], value).items()]
        return dict(sorted(pairs, key=lambda kv: pydantic_core.to_json(kv[0])))
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in cast(Sequence[Any], value)]
    return pydantic_core.to_jsonable_python(value)


@functools.lru_cache(maxsize=256)
def _adapter_for(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__qualname__", repr(tp))


def return_outcome(value: Any, usage: dict[str, Any] | None = None) -> ReturnOutcome:
    """A tool's return value as an outcome, keeping pydantic-ai's special return types intact."""
    if isinstance(value, _messages.ToolReturn):
        return ReturnOutcome(encoding="tool_return", tool_return=cast(_messages.ToolReturn[Any], value), usage=usage)
    if _is_multimodal(value):
        items = cast(Sequence[Any], value) if isinstance(value, list | tuple) else [value]
        return ReturnOutcome(encoding="content", content=list(items), usage=usage)
    return ReturnOutcome(value=value, usage=usage)


def return_value(outcome: ReturnOutcome) -> Any:
    """The value a tool returned, from its outcome (see [`return_outcome`][durable_agents._codec.return_outcome])."""
    if outcome.encoding == "tool_return":
        return outcome.tool_return
    if outcome.encoding == "content":
        items = outcome.content or []
        return items[0] if len(items) == 1 and not isinstance(items[0], str) else items
    return outcome.value


_MULTIMODAL = (
    _messages.BinaryContent,
    _messages.ImageUrl,
    _messages.AudioUrl,
    _messages.VideoUrl,
    _messages.DocumentUrl,
)


def _is_multimodal(value: Any) -> bool:
    if isinstance(value, _MULTIMODAL):
        return True
    if isinstance(value, list | tuple):
        items = cast(Sequence[Any], value)
        return any(isinstance(v, _MULTIMODAL) for v in items)
    return False
