"""Embeddings for flows: every LangFlow embeddings node becomes one routed client.

``OpenAIEmbeddings`` (langchain-openai) pointed at the backend that routing picks for the
node's model or base URL, as chat models are (``flows.models``): the key is the backend's
configured one, never a value from the flow; the backend's fleet-wide ``max_concurrency``
holds for embedding calls too. Azure, Ollama, Google and Hugging Face endpoint nodes take
the same path: their backend must speak the OpenAI embeddings API (vLLM, TEI, Ollama's
``/v1``, llm-sim), which is how flowfleet serves every provider.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from langchain_openai import OpenAIEmbeddings

from flows.models import backend_place
from flows.routing import BackendNotAllowed, ModelSpec, route, sim_backend
from shared.settings import BackendConfig, get_settings

DEFAULT_MODEL = "text-embedding-3-small"


@dataclass(frozen=True)
class EmbeddingSpec:
    """What an embeddings node asks for; ``identity`` is what makes two vectors comparable."""

    model_name: str = DEFAULT_MODEL
    provider: str | None = None  # LangFlow's provider name (routing normalises it)
    base_url: str | None = None
    dimensions: int | None = None
    batch_size: int = 1000  # LangFlow's chunk_size: texts per request
    max_retries: int = 3
    timeout_s: float | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def backend(self) -> BackendConfig:
        """The backend that serves this model; raises BackendNotAllowed when none can."""
        settings = get_settings()
        spec = ModelSpec(model_name=self.model_name, provider=self.provider, base_url=self.base_url)
        backend = route(spec, settings)
        if backend.api == "openai":
            return backend
        if settings.env != "production" and backend.name.startswith("llm-sim"):
            return sim_backend(settings, "openai")  # the embedded default: llm-sim's /v1
        raise BackendNotAllowed(
            f"embeddings of provider {self.provider!r} go to backend {backend.name!r}, which "
            f"speaks the {backend.api} API; embeddings need an OpenAI-compatible backend: "
            "configure one serving this provider (docs/providers.md)",
            field="model",
        )

    def cache_key(self) -> str:
        """Every setting, as text (the spec holds a dict, so it is not hashable)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)

    def identity(self) -> str:
        """Backend, model and dimensions: vectors of different identities never mix."""
        backend = self.backend()
        raw = json.dumps([backend.name, backend.base_url, self.model_name, self.dimensions])
        # (the provider is not part of it: it only chooses the backend, which is)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


class RoutedEmbeddings(OpenAIEmbeddings):
    """``OpenAIEmbeddings`` whose calls hold a place of their backend's fleet-wide limit."""

    backend_name: str = "default"
    max_concurrency: int | None = None

    async def aembed_documents(
        self, texts: list[str], chunk_size: int | None = None, **kwargs: Any
    ) -> list[list[float]]:
        async with backend_place(self.backend_name, self.max_concurrency):
            return await super().aembed_documents(texts, chunk_size, **kwargs)

    async def aembed_query(self, text: str, **kwargs: Any) -> list[float]:
        async with backend_place(self.backend_name, self.max_concurrency):
            return await super().aembed_query(text, **kwargs)


def embeddings_client(spec: EmbeddingSpec) -> RoutedEmbeddings:
    """The client for an embeddings node, routed and keyed by the backend's configuration."""
    backend = spec.backend()
    params: dict[str, Any] = {
        "model": spec.model_name,
        "base_url": backend.base_url,
        "api_key": backend.api_key() or "none",
        "chunk_size": max(1, spec.batch_size),
        "max_retries": spec.max_retries,
        "timeout": spec.timeout_s or backend.timeout_s,
        # Texts go as text: token ids need tiktoken's files (not on an offline host), and
        # non-OpenAI servers (vLLM, TEI, Ollama) take text anyway.
        "check_embedding_ctx_length": False,
        "model_kwargs": dict(spec.model_kwargs),
        "backend_name": backend.name,
        "max_concurrency": backend.max_concurrency,
    }
    if spec.dimensions:
        params["dimensions"] = spec.dimensions
    return RoutedEmbeddings(**params)
