"""Which backend serves a model request; light (no LangChain) so the API can show it too."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from shared.settings import BackendConfig, Settings, get_settings


class BackendNotAllowed(ValueError):
    """A flow names a base URL that no configured backend serves."""


@dataclass(frozen=True)
class ModelSpec:
    """What a flow asks of a model; routing turns it into a backend call."""

    model_name: str | None = None
    provider: str | None = None  # lowercase id (openai, anthropic, google, ollama, ...)
    base_url: str | None = None
    api_key_env: str | None = None  # the *name* of the variable holding the key
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    json_mode: bool = False
    timeout_s: float | None = None
    streaming: bool | None = True  # None: each call says (``stream=`` on ainvoke)
    model_kwargs: dict[str, Any] = field(default_factory=dict)


def route(spec: ModelSpec, settings: Settings | None = None) -> BackendConfig:
    """Pick the backend: by base URL, else by model name, else the default."""
    settings = settings or get_settings()
    if spec.base_url:
        wanted = spec.base_url.rstrip("/")
        for backend in settings.backends:
            if backend.base_url == wanted:
                return backend
        if not settings.allow_adhoc_backends:
            raise BackendNotAllowed(
                f"base URL {wanted!r} is not a configured backend "
                "(configure it in FLOWFLEET_BACKENDS or set FLOWFLEET_ALLOW_ADHOC_BACKENDS=true)"
            )
        return BackendConfig(name=f"adhoc:{wanted}", base_url=wanted, api_key_env=spec.api_key_env)
    if spec.model_name:
        for backend in settings.backends:
            if any(fnmatch.fnmatchcase(spec.model_name, p) for p in backend.models):
                return backend
    return next(b for b in settings.backends if b.name == settings.default_backend)
