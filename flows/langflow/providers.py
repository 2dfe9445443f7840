"""Which provider and model a LangFlow model node names, in every export format 1.0-1.13.

Light (no LangChain): the API validates uploads with it. Formats, newest first (facts from
LangFlow's component sources and its starter projects):

- 1.8+ ``model`` field (``ModelInput``): a list with one ``{provider, name, metadata:
  {model_class, api_key_param, ...}}`` on LanguageModelComponent, Agent, StructuredOutput,
  BatchRun, EmbeddingModel. 1.12+ starters export it empty (``""``) with
  ``metadata.model_provider_policy_mode: "delegate"``: the deployment's default model.
- 1.6/1.7 LanguageModelComponent: a ``provider`` dropdown and a ``model_name`` field.
- 1.0-1.7 Agent: ``agent_llm`` names the provider (``"Custom"``: a connected model).
- Provider components (``GroqModel``, ``OllamaModel``, ...): the provider is the kind.

A provider is reported as a lowercase id (``openai``, ``anthropic``, ``google``, ...);
routing maps ids to backends. A provider's base-URL field in the export is not followed:
the configured backend for the provider decides where requests go (a flow cannot point a
worker at an arbitrary host).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.providers import KNOWN_PROVIDERS, known_provider

# Non-model nodes that build their own model from the 1.8+ ``model`` field.
OWN_MODEL_KINDS = frozenset({"StructuredOutput", "BatchRunComponent", "SmartRouter"})
PROVIDER_IDS = KNOWN_PROVIDERS
# agent_llm / provider values meaning "the model comes from an edge", not a provider.
CONNECTED_MODEL = frozenset({"custom", "connectothermodels", "connectothermodel"})


@dataclass(frozen=True)
class ProviderComponent:
    """A provider's own model component: its kind, provider id and field names."""

    kind: str
    display_name: str
    provider: str
    model_field: str = "model_name"
    max_tokens_field: str = "max_tokens"
    extra_fields: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


# Field names from each LangFlow component's inputs; extra fields are accepted, not used
# (base URLs: the backend configured for the provider decides).
PROVIDER_COMPONENTS: tuple[ProviderComponent, ...] = (
    ProviderComponent(
        "GroqModel", "Groq", "groq", extra_fields=("base_url", "n", "tool_model_enabled")
    ),
    ProviderComponent(
        "OllamaModel", "Ollama", "ollama", extra_fields=("base_url", "format", "top_k", "top_p")
    ),
    ProviderComponent("LMStudioModel", "LM Studio", "lmstudio", extra_fields=("base_url", "seed")),
    ProviderComponent(
        "AnthropicModel",
        "Anthropic",
        "anthropic",
        extra_fields=("base_url", "tool_model_enabled", "prefill"),
        aliases=("AnthropicLLM",),
    ),
    ProviderComponent(
        "GoogleGenerativeAIModel",
        "Google Generative AI",
        "google",
        max_tokens_field="max_output_tokens",
        extra_fields=("top_p", "top_k", "n", "tool_model_enabled"),
    ),
    ProviderComponent(
        "AzureOpenAIModel",
        "Azure OpenAI",
        "azure",
        model_field="azure_deployment",
        extra_fields=("azure_endpoint", "api_version"),
    ),
    ProviderComponent(
        "MistralModel",
        "MistralAI",
        "mistral",
        extra_fields=("mistral_api_base", "max_retries", "timeout", "random_seed", "safe_mode"),
    ),
    ProviderComponent(
        "NVIDIAModelComponent",
        "NVIDIA",
        "nvidia",
        extra_fields=("base_url", "seed", "detailed_thinking", "tool_model_enabled"),
    ),
    ProviderComponent(
        "DeepSeekModelComponent",
        "DeepSeek",
        "deepseek",
        extra_fields=("api_base", "seed", "json_mode"),
    ),
    ProviderComponent(
        "OpenRouterComponent",
        "OpenRouter",
        "openrouter",
        extra_fields=("provider", "site_url", "app_name"),
    ),
    ProviderComponent(
        "xAIModel", "xAI", "xai", extra_fields=("base_url", "seed", "json_mode", "model_kwargs")
    ),
)
PROVIDER_BY_KIND: dict[str, ProviderComponent] = {p.kind: p for p in PROVIDER_COMPONENTS}


class UnknownProvider(ValueError):
    """A model node names a provider flowfleet has no id for."""

    def __init__(self, name: str, field_name: str) -> None:
        super().__init__(name)
        self.name = name
        self.field_name = field_name


def provider_id(name: Any) -> str | None:
    """The lowercase id of a LangFlow provider name; None when empty or unknown."""
    return known_provider(name) if isinstance(name, str) else None


@dataclass(frozen=True)
class ModelChoice:
    """The provider id and model name a node asks for (None: the deployment's default)."""

    provider: str | None
    model_name: str | None
    connected: bool = False  # the node takes its model from an edge (agent_llm "Custom")
    reasoning: bool = False  # the ModelInput metadata lists it as a reasoning model


def _reasoning(entry: Mapping[str, Any], name: Any) -> bool:
    # LangFlow sends no temperature to the models its metadata lists as reasoning models.
    metadata = entry.get("metadata")
    listed = metadata.get("reasoning_models") if isinstance(metadata, Mapping) else None
    return isinstance(listed, list) and name in listed


def model_entry(value: Any) -> Mapping[str, Any] | None:
    """The selected ``{provider, name, metadata}`` of a ModelInput value, None when unset."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, Mapping)), None)
    return (
        value
        if isinstance(value, Mapping) and (value.get("name") or value.get("provider"))
        else None
    )


def _named(raw: Any, field_name: str) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    found = provider_id(raw)
    if found is None:
        raise UnknownProvider(raw, field_name)
    return found


def model_choice(kind: str, values: Mapping[str, Any]) -> ModelChoice:
    """Read the provider and model of a model node; raises UnknownProvider."""
    component = PROVIDER_BY_KIND.get(kind)
    if component is not None:  # a provider's own component: the kind names the provider
        name = values.get(component.model_field)
        return ModelChoice(component.provider, name if isinstance(name, str) and name else None)
    entry = model_entry(values.get("model"))
    if entry is not None:
        name = entry.get("name")
        return ModelChoice(
            _named(entry.get("provider"), "model"),
            name if isinstance(name, str) and name else None,
            reasoning=_reasoning(entry, name),
        )
    name = values.get("model_name")
    model_name = name if isinstance(name, str) and name else None
    agent_llm = values.get("agent_llm")
    if isinstance(agent_llm, str) and agent_llm:
        if re.sub(r"[^a-z]", "", agent_llm.lower()) in CONNECTED_MODEL:
            return ModelChoice(None, None, connected=True)
        return ModelChoice(_named(agent_llm, "agent_llm"), model_name)
    if kind == "OpenAIModel":
        return ModelChoice("openai", model_name)
    return ModelChoice(_named(values.get("provider"), "provider"), model_name)
