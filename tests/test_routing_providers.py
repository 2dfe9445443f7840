"""Routing by provider: base URL, else provider (and model patterns), else model, else default."""

from __future__ import annotations

import pytest

from flows.routing import BackendNotAllowed, ModelSpec, route
from shared.providers import normalise_provider, provider_api
from shared.settings import Settings

BACKENDS = [
    {"name": "oai", "base_url": "http://oai/v1", "models": ["gpt-*"]},
    {"name": "groq", "base_url": "http://groq/v1", "providers": ["Groq"], "models": ["llama-*"]},
    {"name": "claude", "base_url": "http://claude", "api": "anthropic", "providers": ["anthropic"]},
]


def _settings(env: str = "embedded") -> Settings:
    return Settings(
        env=env,
        backends=BACKENDS,
        llm_sim_url="http://sim:8001/v1",
        webhook_secret="a-production-secret-0123456789abcdef",  # production refuses the default
    )


@pytest.mark.parametrize(
    ("name", "normal", "api"),
    [
        ("Google Generative AI", "google", "google"),
        ("GoogleGenerativeAI", "google", "google"),
        ("Anthropic", "anthropic", "anthropic"),
        ("IBM watsonx.ai", "ibm-watsonx", "openai"),
        ("LM Studio", "lmstudio", "openai"),
        ("xAI", "xai", "openai"),
        ("Azure OpenAI", "azure", "openai"),
    ],
)
def test_langflow_provider_names_normalise(name: str, normal: str, api: str) -> None:
    assert normalise_provider(name) == normal
    assert provider_api(name) == api


def test_provider_routes_before_model_name_and_patterns_still_apply() -> None:
    settings = _settings()
    assert route(ModelSpec(provider="Groq", model_name="llama-3"), settings).name == "groq"
    assert route(ModelSpec(provider="Anthropic", model_name="gpt-4o"), settings).name == "claude"
    # OpenAI itself has no provider entry here: by model name, else the default.
    assert route(ModelSpec(provider="OpenAI", model_name="gpt-4o"), settings).name == "oai"
    # A base URL wins over the provider.
    spec = ModelSpec(provider="Groq", model_name="gpt-4o", base_url="http://oai/v1/")
    assert route(spec, settings).name == "oai"
    with pytest.raises(BackendNotAllowed) as refused:
        route(ModelSpec(provider="Groq", model_name="mixtral"), settings)
    assert refused.value.field == "model_name"


def test_unserved_provider_is_refused_in_production_and_simulated_in_embedded() -> None:
    with pytest.raises(BackendNotAllowed) as refused:
        route(
            ModelSpec(provider="Google Generative AI", model_name="gemini"), _settings("production")
        )
    assert refused.value.field == "provider"
    assert "'google' has no configured backend" in str(refused.value)
    embedded = route(ModelSpec(provider="Google Generative AI"), _settings())
    assert (embedded.name, embedded.api, embedded.base_url) == (
        "llm-sim-google",
        "google",
        "http://sim:8001",
    )
    groq_like = route(ModelSpec(provider="Mistral"), _settings())
    assert (groq_like.api, groq_like.base_url) == ("openai", "http://sim:8001/v1")


def test_adhoc_backends_carry_no_key() -> None:
    settings = _settings().model_copy(update={"allow_adhoc_backends": True})
    backend = route(
        ModelSpec(base_url="http://listener/v1", api_key_env="OPENAI_API_KEY"), settings
    )
    assert backend.adhoc
    assert backend.api_key_env is None
    assert backend.api_key() == "not-set"
