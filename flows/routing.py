"""Which backend serves a model request; light (no LangChain) so the API can show it too.

Order: the flow's base URL, else its provider (and the backend's model patterns), else its
model name, else the default backend. docs/providers.md says how to configure each.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from shared.providers import normalise_provider, provider_api
from shared.settings import BackendConfig, Settings, get_settings

# Fields of a model node that choose where a call goes, with which key and for how long: a
# per-run tweak may change them only when the operator lists them in
# FLOWFLEET_TWEAKABLE_MODEL_FIELDS; secret fields never (docs/security.md, "Secrets").
MODEL_CONNECTION_FIELDS = frozenset(
    {
        "openai_api_base",
        "base_url",
        "api_base",
        "base_url_ibm_watsonx",
        "ollama_base_url",
        "azure_endpoint",
        "azure_deployment",
        "api_version",
        "model_name",
        "model",
        "provider",
        "agent_llm",
        "timeout",
        "max_retries",
        "project_id",
    }
)
SECRET_FIELDS = frozenset({"api_key", "openai_api_key", "anthropic_api_key", "google_api_key"})


class BackendNotAllowed(ValueError):
    """A flow names a base URL, provider or model that no configured backend serves."""

    def __init__(self, message: str, field: str = "openai_api_base") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ModelSpec:
    """What a flow asks of a model; routing turns it into a backend call."""

    model_name: str | None = None
    provider: str | None = None  # lowercase id (openai, anthropic, google, ollama, ...)
    base_url: str | None = None
    # The *name* of a variable a flow asked for; never used to pick a key (the key sent is
    # always the routed backend's own, BackendConfig.api_key_env): kept for parsing only.
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    json_mode: bool = False
    timeout_s: float | None = None
    streaming: bool | None = True  # None: each call says (``stream=`` on ainvoke)
    model_kwargs: dict[str, Any] = field(default_factory=dict)


def _matches(model_name: str | None, backend: BackendConfig) -> bool:
    return model_name is None or any(fnmatch.fnmatchcase(model_name, p) for p in backend.models)


def route(spec: ModelSpec, settings: Settings | None = None) -> BackendConfig:
    """Pick the backend: by base URL, else provider, else model name, else the default."""
    settings = settings or get_settings()
    if spec.base_url:
        wanted = spec.base_url.rstrip("/")
        for backend in settings.backends:
            if backend.base_url == wanted:
                check_model_name(spec, backend)
                return backend
        if not settings.allow_adhoc_backends:
            raise BackendNotAllowed(
                f"base URL {wanted!r} is not a configured backend "
                "(configure it in FLOWFLEET_BACKENDS or set FLOWFLEET_ALLOW_ADHOC_BACKENDS=true)"
            )
        # An ad-hoc backend never gets a configured key (adhoc=True: BackendConfig.api_key).
        api = provider_api(spec.provider) if spec.provider else "openai"
        return BackendConfig(name=f"adhoc:{wanted}", base_url=wanted, api=api, adhoc=True)
    if spec.provider:
        found = _by_provider(spec, settings)
        if found is not None:
            return found
    if spec.model_name:
        for backend in settings.backends:
            if any(fnmatch.fnmatchcase(spec.model_name, p) for p in backend.models):
                return backend
    return default_backend(settings)


def default_backend(settings: Settings) -> BackendConfig:
    """The backend a spec naming nothing in particular goes to."""
    return next(b for b in settings.backends if b.name == settings.default_backend)


def _by_provider(spec: ModelSpec, settings: Settings) -> BackendConfig | None:
    provider = normalise_provider(spec.provider or "")
    serving = [b for b in settings.backends if provider in b.providers]
    for backend in serving:
        if _matches(spec.model_name, backend):
            return backend
    if serving:
        raise BackendNotAllowed(
            f"model {spec.model_name!r} of provider {provider!r} matches none of the models "
            f"its backends serve ({', '.join(p for b in serving for p in b.models)})",
            field="model_name",
        )
    if provider == "openai":
        return None  # OpenAI itself: by model name, else the default backend (as before)
    if settings.env == "production":
        raise BackendNotAllowed(
            f"provider {provider!r} has no configured backend: add one serving it "
            f"(providers: [{provider}] in FLOWFLEET_BACKENDS, docs/providers.md) "
            "or choose a provider that has one",
            field="provider",
        )
    # Embedded default: any other provider goes to llm-sim, speaking the provider's own API.
    return sim_backend(settings, provider_api(provider))


def sim_backend(settings: Settings, api: str) -> BackendConfig:
    """llm-sim as a backend speaking ``api`` (the SDKs of Anthropic and Gemini add /v1...)."""
    if api == "openai":
        return BackendConfig(name="llm-sim", base_url=settings.llm_sim_url)
    root = settings.llm_sim_url.rstrip("/").removesuffix("/v1")
    return BackendConfig(name=f"llm-sim-{api}", base_url=root, api=api)  # type: ignore[arg-type]


def check_model_name(spec: ModelSpec, backend: BackendConfig) -> None:
    """Refuse a model name outside the backend's patterns (each new name is a metrics series)."""
    if spec.model_name and not _matches(spec.model_name, backend):
        raise BackendNotAllowed(
            f"model {spec.model_name!r} is not one backend {backend.name!r} serves "
            f"(models: {', '.join(backend.models)})",
            field="model_name",
        )


def model_tweak_refusal(
    node_id: str, name: str, value: Any, settings: Settings | None = None
) -> str | None:
    """Why a per-run tweak may not set field ``name`` of model node ``node_id`` (None: it may).

    Tweakable is everything but the connection fields, which only the operator can open
    (FLOWFLEET_TWEAKABLE_MODEL_FIELDS); secrets never. An opened ``model_name`` must still be
    a model the backend serves, so a client cannot mint a metrics series per request.
    """
    settings = settings or get_settings()
    if name in SECRET_FIELDS or name.endswith("__env"):
        return f"tweak {node_id}.{name} is refused: keys come only from the backend's configuration"
    if name not in MODEL_CONNECTION_FIELDS:
        return None
    if name not in settings.tweakable_model_fields:
        return (
            f"tweak {node_id}.{name} is refused: model connection fields are fixed by the flow "
            "(the operator may open some with FLOWFLEET_TWEAKABLE_MODEL_FIELDS)"
        )
    if name in ("model_name", "model") and isinstance(value, str) and value:
        try:
            check_model_name(
                ModelSpec(model_name=value), route(ModelSpec(model_name=value), settings)
            )
        except BackendNotAllowed as exc:
            return f"tweak {node_id}.{name}: {exc}"
    return None
