"""The vector store every RAG node uses: one interface, Chroma underneath.

Chroma embedded (a persistent directory, ``FLOWFLEET_VECTOR_STORE_PATH``) when no URL is
set, which is what ``make run`` uses; the shared ``chroma run`` server
(``FLOWFLEET_VECTOR_STORE_URL``) in the cluster, so every worker reads and writes the same
collections. Collections are owner-scoped: ``store_collection`` puts the owner into the
name, so a key's search never reaches another key's chunks. Chroma's client is blocking:
its calls run in a thread, off the worker's event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from shared.settings import Settings, get_settings

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")


@dataclass(frozen=True)
class Chunk:
    """One piece of a document, ready to store with its vector."""

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A search result: the chunk's text and metadata, and its cosine similarity."""

    text: str
    metadata: dict[str, Any]
    score: float


class VectorStore(Protocol):
    """What RAG nodes need of a store; ``where`` is an equality filter on metadata."""

    async def add(
        self, collection: str, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]
    ) -> None: ...

    async def search(
        self,
        collection: str,
        vector: Sequence[float],
        k: int,
        where: Mapping[str, Any] | None = None,
    ) -> list[Hit]: ...

    async def delete(
        self, collection: str, where: Mapping[str, Any], keep: Mapping[str, Any] | None = None
    ) -> None: ...


def store_collection(owner: str, name: str, embedding: str = "") -> str:
    """The store's collection for a flow's collection name, the run's owner and the
    embedding model's identity (vectors of two models never share a collection).

    Readable parts for operators, a hash for uniqueness (names differing only in
    characters Chroma refuses stay apart); within Chroma's 3-512 ``[a-zA-Z0-9._-]``.
    """
    digest = hashlib.sha256(json.dumps([owner, name, embedding]).encode()).hexdigest()[:16]
    readable = _UNSAFE.sub("-", f"{owner}-{name}").strip("-_")[:64]
    return f"ff-{readable}-{digest}" if readable else f"ff-{digest}"


def _metadata(values: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    # Chroma keeps scalars only: others travel as JSON text, None is dropped.
    out: dict[str, str | int | float | bool] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, str | int | float | bool):
            out[str(key)] = value
        else:
            out[str(key)] = json.dumps(value, default=str, sort_keys=True)
    return out


def _where(conditions: Mapping[str, Any]) -> dict[str, Any] | None:
    items = [{k: v} for k, v in conditions.items()]
    if not items:
        return None
    return items[0] if len(items) == 1 else {"$and": items}


class ChromaStore:
    """Chroma, embedded in a directory or over HTTP; collections use cosine distance."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ChromaStore:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if settings.vector_store_url:
            url = urlsplit(settings.vector_store_url)
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        else:
            settings.vector_store_path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(
                path=str(settings.vector_store_path), settings=chroma_settings
            )
        return cls(client)

    def _collection(self, name: str) -> Any:
        with self._lock:
            found = self._collections.get(name)
            if found is None:
                found = self._client.get_or_create_collection(
                    name, embedding_function=None, metadata={"hnsw:space": "cosine"}
                )
                self._collections[name] = found
            return found

    async def add(
        self, collection: str, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]
    ) -> None:
        if not chunks:
            return

        def write() -> None:
            target = self._collection(collection)
            step = 1000  # well under Chroma's max batch
            for start in range(0, len(chunks), step):
                part = chunks[start : start + step]
                target.upsert(
                    ids=[c.id for c in part],
                    documents=[c.text for c in part],
                    metadatas=[_metadata(c.metadata) or {"_": ""} for c in part],
                    embeddings=[list(v) for v in vectors[start : start + step]],
                )

        await asyncio.to_thread(write)

    async def search(
        self,
        collection: str,
        vector: Sequence[float],
        k: int,
        where: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        def query() -> list[Hit]:
            found = self._collection(collection).query(
                query_embeddings=[list(vector)],
                n_results=max(1, k),
                where=_where(where or {}),
                include=["documents", "metadatas", "distances"],
            )
            documents = (found.get("documents") or [[]])[0]
            metadatas = (found.get("metadatas") or [[]])[0]
            distances = (found.get("distances") or [[]])[0]
            return [
                Hit(text=d or "", metadata=dict(m or {}), score=1.0 - float(s))
                for d, m, s in zip(documents, metadatas, distances, strict=False)
            ]

        return await asyncio.to_thread(query)

    async def delete(
        self, collection: str, where: Mapping[str, Any], keep: Mapping[str, Any] | None = None
    ) -> None:
        """Delete the chunks matching ``where``, except those also matching ``keep``."""
        conditions: dict[str, Any] = dict(where)
        for key, value in (keep or {}).items():
            conditions[key] = {"$ne": value}

        def remove() -> None:
            self._collection(collection).delete(where=_where(conditions))

        await asyncio.to_thread(remove)


_stores: dict[tuple[str | None, str], VectorStore] = {}
_stores_lock = threading.Lock()


def vector_store(settings: Settings | None = None) -> VectorStore:
    """The process's store for these settings (one client, made on first use)."""
    settings = settings or get_settings()
    key = (settings.vector_store_url, str(settings.vector_store_path))
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = ChromaStore.from_settings(settings)
        return store
