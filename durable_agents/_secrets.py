"""Secrets by reference: a run carries a secret's name, and the unit that needs the value looks it up.

Every engine stores a run's inputs (Temporal's workflow history, DBOS's system database, Prefect's flow
parameters and task results), and every unit input that carries deps or model settings. A
[`Secret`][durable_agents.Secret] is stored as `{"$secret": "<name>"}` everywhere; its value is read only
where it is used, on the unit side, from the worker's environment or from the resolver given to
[`configure(secret_resolver=...)`][durable_agents.configure]:

- in deps, a field typed `Secret` validates and serializes as the reference; a tool reads the value with
  `ctx.deps.api_key.get_secret_value()`;
- in `model_settings` (for example `extra_headers={"Authorization": Secret("PROVIDER_TOKEN")}`), the model unit
  replaces every reference with its value just before the request, and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

from pydantic import GetCoreSchemaHandler
from pydantic_core import SchemaSerializer, core_schema

from .exceptions import SecretNotFoundError

__all__ = ["SECRET_KEY", "Secret", "SecretResolver", "from_refs", "reveal", "set_resolver", "to_refs"]

SECRET_KEY = "$secret"
"""The key of a secret's stored form, `{"$secret": "<name>"}`."""

SecretResolver = Callable[[str], str | None]
"""Looks a secret's value up by name; `None` when it has no secret of that name."""


def _environment(name: str) -> str | None:
    return os.environ.get(name)


_resolver: list[SecretResolver] = [_environment]


def set_resolver(resolver: SecretResolver | None) -> None:
    """Use `resolver` to look secrets up in this process (`None`: the environment again)."""
    _resolver[0] = resolver or _environment


class Secret:
    """A secret passed by reference: runs store only its name, units look its value up where they use it.

    ```python
    from dataclasses import dataclass

    from durable_agents import Secret


    @dataclass
    class Deps:
        api_key: Secret  # stored as {"$secret": "WEATHER_API_KEY"}


    deps = Deps(api_key=Secret("WEATHER_API_KEY"))
    # in a tool, on the worker: ctx.deps.api_key.get_secret_value()
    ```

    The value comes from the environment of the process that runs the unit, or from the resolver given to
    [`configure(secret_resolver=...)`][durable_agents.configure]. A `Secret` in `model_settings` is replaced by
    its value inside the model unit, just before the request.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str, /) -> None:
        """Refer to the secret called `name`."""
        if not isinstance(name, str) or not name:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"Secret() takes the secret's name as a non-empty string, not {name!r}.")
        self._name = name

    @property
    def name(self) -> str:
        """The secret's name: an environment variable of the worker, or a key the resolver knows."""
        return self._name

    def get_secret_value(self) -> str:
        """The secret's value, looked up now.

        Raises:
            SecretNotFoundError: Neither the resolver nor the environment has a secret of this name.
        """
        value = _resolver[0](self._name)
        if value is None:
            raise SecretNotFoundError(self._name)
        return value

    def __repr__(self) -> str:
        return f"Secret({self._name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.name == self._name

    def __hash__(self) -> int:
        return hash((Secret, self._name))

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (DBOS workflow inputs) as its name only.
        return (Secret, (self._name,))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        from_ref = core_schema.no_info_after_validator_function(
            lambda data: cls(data[SECRET_KEY]),
            core_schema.typed_dict_schema(
                {SECRET_KEY: core_schema.typed_dict_field(core_schema.str_schema(min_length=1))},
                extra_behavior="forbid",
            ),
        )
        return core_schema.json_or_python_schema(
            json_schema=from_ref,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_ref]),
            serialization=core_schema.plain_serializer_function_ser_schema(_stored),
        )


def _stored(secret: Secret) -> dict[str, str]:
    return {SECRET_KEY: secret.name}


# How pydantic serializes a `Secret` found where the type says `Any` (model settings, metadata, workflow arguments).
Secret.__pydantic_serializer__ = SchemaSerializer(  # pyright: ignore[reportAttributeAccessIssue]
    core_schema.any_schema(serialization=core_schema.plain_serializer_function_ser_schema(_stored))
)


def to_refs(value: Any) -> Any:
    """`value` with every `Secret` in its dicts and lists replaced by its stored form (a copy where one is)."""
    if isinstance(value, Secret):
        return _stored(value)
    if isinstance(value, dict):
        return {k: to_refs(v) for k, v in cast(dict[Any, Any], value).items()}
    if isinstance(value, list | tuple):
        items = [to_refs(v) for v in cast(list[Any], value)]
        return items if isinstance(value, list) else tuple(items)
    return value


def _ref_name(value: Any) -> str | None:
    if isinstance(value, Secret):
        return value.name
    if isinstance(value, dict) and len(cast(dict[Any, Any], value)) == 1:
        name = cast(dict[Any, Any], value).get(SECRET_KEY)
        if isinstance(name, str):
            return name
    return None


def from_refs(value: Any) -> Any:
    """JSON data with every stored secret turned back into a `Secret` (what a run context shows in a unit)."""
    name = _ref_name(value)
    if name is not None:
        return Secret(name)
    if isinstance(value, dict):
        return {k: from_refs(v) for k, v in cast(dict[Any, Any], value).items()}
    if isinstance(value, list):
        return [from_refs(v) for v in cast(list[Any], value)]
    return value


def reveal(value: Any) -> Any:
    """`value` with every `Secret` or stored secret replaced by its value (only where the value is used).

    Raises:
        SecretNotFoundError: A secret has no value in this process.
    """
    name = _ref_name(value)
    if name is not None:
        return Secret(name).get_secret_value()
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in cast(dict[Any, Any], value).items()}
    if isinstance(value, list | tuple):
        return [reveal(v) for v in cast(list[Any], value)]
    return value
