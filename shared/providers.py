"""LangFlow's model providers, by one normalised name each, and the API each one speaks.

LangFlow names a provider in a model node (``provider`` dropdown, the ``model`` field's
``provider``, or the component itself: ``GroqModel``...). Backends list the normalised
names they serve (``BackendConfig.providers``); routing compares normalised names only.
"""

from __future__ import annotations

import re
from typing import Literal

Api = Literal["openai", "anthropic", "google"]

# LangFlow's spellings (display names, component names) -> flowfleet's provider name.
_ALIASES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "claude": "anthropic",
    "google": "google",
    "googlegenerativeai": "google",
    "googlegenai": "google",
    "gemini": "google",
    "ollama": "ollama",
    "groq": "groq",
    "lmstudio": "lmstudio",
    "azure": "azure",
    "azureopenai": "azure",
    "mistral": "mistral",
    "mistralai": "mistral",
    "nvidia": "nvidia",
    "nvidianim": "nvidia",
    "deepseek": "deepseek",
    "openrouter": "openrouter",
    "xai": "xai",
    "grok": "xai",
    "ibmwatsonx": "ibm-watsonx",
    "ibmwatsonxai": "ibm-watsonx",
    "watsonxai": "ibm-watsonx",
    "watsonx": "ibm-watsonx",
    "ibm": "ibm-watsonx",
    "vllm": "vllm",
    "perplexity": "perplexity",
    "sambanova": "sambanova",
    "cohere": "cohere",
}

# The wire format each provider's own service speaks; every provider not named here
# offers an OpenAI-compatible API (that is how flowfleet reaches it).
PROVIDER_API: dict[str, Api] = {"anthropic": "anthropic", "google": "google"}


KNOWN_PROVIDERS: tuple[str, ...] = tuple(sorted(set(_ALIASES.values())))


def known_provider(name: str) -> str | None:
    """The provider id of one of LangFlow's spellings; None when it names no known provider."""
    return _ALIASES.get(re.sub(r"[^a-z0-9]", "", name.lower()))


def normalise_provider(name: str) -> str:
    """``Google Generative AI`` -> ``google``, ``IBM watsonx`` -> ``ibm-watsonx``..."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return _ALIASES.get(key, re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))


def provider_api(provider: str) -> Api:
    """The API a provider's own service speaks (OpenAI-compatible unless listed)."""
    return PROVIDER_API.get(normalise_provider(provider), "openai")
