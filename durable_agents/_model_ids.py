"""Model ids: how a durable run names its model for its units, and what stands in for the model in the container.

The container (workflow, flow) never builds a model that talks to a provider, so it needs no model credentials
and makes no API client. It decides which model the run uses and names it with a *model id*, which unit inputs
carry; the units build the real model from the id (once per process, see
[`resolve_unit_model`][durable_agents.DurableAgent.resolve_unit_model]).

| model id | the model | in a unit |
|---|---|---|
| `None` | the agent's default: its own model, else the first of `models=` | that model (a string is built) |
| `'m:<key>'` | the model registered as `<key>` with `models=` | that model (a string is built) |
| `'i:<provider:model>'` | a model string given to `run(model=...)` or `override(model=...)` | `infer_model(string)` |
| `'o:<n>'` | a model instance given to `override(model=...)` | that instance, while it lives in this process |

In the container, a model instance answers the agent graph's questions itself (the user built it, so it exists);
a model string is answered by a `NamedModel`.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import Any, cast

from pydantic_ai.agent import AbstractAgent, WrapperAgent
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters, infer_model, infer_model_profile, parse_model_id
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.providers import infer_provider_class
from pydantic_ai.settings import ModelSettings

__all__ = [
    "NamedModel",
    "live_override",
    "override_model_id",
    "plain_agent_override",
    "process_override",
    "process_override_of",
]


class NamedModel(Model):
    """The container's stand-in for a model known only by its `'provider:model'` string.

    It answers what the agent graph asks of a model (name, system, profile, and through the profile
    `customize_request_parameters`, `prepare_request` and `prepare_messages`) from the string alone, with the
    profile pydantic-ai infers from it ([`infer_model_profile`][pydantic_ai.models.infer_model_profile]), and never
    builds a provider. Model classes can narrow that profile (a client without a feature): the real model in the
    unit runs `prepare_request` again with its own profile and settings, but the messages it gets were prepared
    here, with the inferred profile.
    """

    def __init__(self, model: str) -> None:
        """Stand in for `model`.

        Raises:
            UserError: `model` names no provider pydantic-ai knows (the error pydantic-ai raises for it).
        """
        provider, name = parse_model_id(model)
        if model != "test":
            try:
                if provider is None:
                    raise ValueError(provider)
                infer_provider_class(provider)
            except ValueError:
                raise UserError(
                    f"Unknown model: {model!r}. Fix: use a 'provider:model' string such as 'openai:gpt-5', "
                    "or the name of a model registered with `models=`."
                ) from None
        super().__init__()
        self._model = model
        self._system = provider or model
        self._name = name
        self._real: Model | None = None

    @property
    def model_name(self) -> str:
        """The model name of the string (after `provider:`)."""
        return self._name

    @property
    def system(self) -> str:
        """The provider name of the string."""
        return self._system

    @cached_property
    def profile(self) -> ModelProfile:  # pyright: ignore[reportIncompatibleVariableOverride]
        """The profile pydantic-ai infers from the string, without a provider."""
        return infer_model_profile(self._model)

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        """A plain request on the real model, built on first use.

        A durable run never gets here: its requests go to model units. Only a request made outside one (the
        stand-in seen through `override` by code that is not a durable run) does, where building the model is fine.
        """
        if self._real is None:
            self._real = infer_model(self._model)
        return await self._real.request(messages, model_settings, model_request_parameters)


# ----------------------------------------------------------------------------------- override models

_LOCK = threading.Lock()
_LIVE: weakref.WeakValueDictionary[str, Model] = weakref.WeakValueDictionary()
_NUMBERS = itertools.count(1)


def override_model_id(model: Model) -> str:
    """The model id (`'o:<n>'`) of an instance given to `override(model=...)`, the same for the same instance.

    Units of this process find the instance by it for as long as it lives; it is held weakly, so an id outlives
    its override only as long as something else keeps the model.
    """
    with _LOCK:
        for model_id, live in _LIVE.items():
            if live is model:
                return model_id
        model_id = f"o:{next(_NUMBERS)}"
        _LIVE[model_id] = model
        return model_id


def live_override(model_id: str) -> Model | None:
    """The instance of an `'o:<n>'` model id, if it lives in this process."""
    with _LOCK:
        return _LIVE.get(model_id)


# Overrides of wrappers whose containers cannot see the caller's context (Temporal workflows run on the worker's
# threads), by agent name. Each entry is a list so that leaving one `with` removes that entry and no other.
_BY_AGENT: dict[str, list[list[Model | str]]] = {}


@contextmanager
def process_override(agent_name: str, model: Model | str) -> Generator[None]:
    """Make `model` the override of every container of `agent_name` in this process while the block runs."""
    entry: list[Model | str] = [model]
    with _LOCK:
        _BY_AGENT.setdefault(agent_name, []).append(entry)
    try:
        yield
    finally:
        with _LOCK:
            entries = _BY_AGENT[agent_name]
            entries[:] = [e for e in entries if e is not entry]


def process_override_of(agent_name: str) -> Model | str | None:
    """The innermost active [`process_override`][durable_agents._model_ids.process_override] of an agent name."""
    with _LOCK:
        entries = _BY_AGENT.get(agent_name)
        return entries[-1][0] if entries else None


def plain_agent_override(agent: AbstractAgent[Any, Any]) -> Model | str | None:
    """The model of an `override(model=...)` of the plain pydantic-ai agent that is active in this context.

    pydantic-ai keeps it in a private ContextVar (`Agent._override_model`, holding `Some(model)` or `None`) and has
    no public way to read it, yet a durable run must honour it the way a plain run does (it is how pydantic-ai users
    test). It is read defensively: anything unexpected counts as no override, so a change inside pydantic-ai can
    only make the override ignored, never crash a run.
    """
    seen: AbstractAgent[Any, Any] | None = agent
    for _ in range(8):  # the wrapper chain (WrapperAgent around WrapperAgent...) ends at the Agent that stores it
        if seen is None:
            break
        var = getattr(seen, "_override_model", None)
        if isinstance(var, ContextVar):
            value = getattr(var.get(None), "value", None)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
            return cast(Model | str, value) if isinstance(value, Model | str) else None
        seen = seen.wrapped if isinstance(seen, WrapperAgent) else None
    return None
