"""Model ids: how a durable run names its model for its units, and what stands in for the model in the container.

The container (workflow, flow) never builds a model that talks to a provider, so it needs no model credentials
and makes no API client. It decides which model the run uses and names it with a *model id*, which unit inputs
carry; the units build the real model from the id (once per process, see
[`resolve_unit_model`][durable_agents.DurableAgent.resolve_unit_model]).

| model id | the model | in a unit |
|---|---|---|
| `None` | the agent's own model | that model (a string is built) |
| `'m:<key>'` | the model registered as `<key>` with `models=` | that model (a string is built) |
| `'i:<provider:model>'` | a model string given to `run(model=...)` | `infer_model(string)` |

In the container, a model instance answers the agent graph's questions itself (the user built it, so it exists);
a model string is answered by a [`NamedModel`][durable_agents._model_ids.NamedModel].
"""

from __future__ import annotations

from functools import cached_property

from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters, infer_model, infer_model_profile, parse_model_id
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.providers import infer_provider_class
from pydantic_ai.settings import ModelSettings

__all__ = ["NamedModel"]


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
