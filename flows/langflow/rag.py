"""flowfleet's implementations of LangFlow's RAG components, on LangChain and Chroma.

- Split Text: LangFlow's splitters (langchain-text-splitters). With ``mode`` (1.10+):
  Recursive (default; ``recursive_separators`` when ``recursive_separators_bool``) or
  Character (``separator``, ``custom_separator`` for Custom, ``/n``-style names); without
  it (1.0-1.9 exports): Character on ``separator``. Separators are unescaped (``\\n``).
  Each chunk is a row ``{text_key: chunk, **the input row's other keys}`` (only the text
  with ``clean_output``).
- Embeddings nodes (every provider): an ``EmbeddingsHandle`` (spec and routed client,
  ``flows.embeddings``) travels along the ``embeddings`` edge.
- Vector store nodes (Chroma, FAISS, and hosted ones the setting maps): ``ingest_data``
  rows are embedded and stored in the owner's collection of the node's collection name,
  once per content (``rag_plan``); ``search_query`` is embedded and searched, giving
  ``number_of_results`` rows ``{"text": chunk, **metadata}`` on ``search_results`` and
  ``dataframe`` (LangFlow's Data and DataFrame), best first.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import (
    CharacterTextSplitter,
    RecursiveCharacterTextSplitter,
    TextSplitter,
)

from flows.embeddings import DEFAULT_MODEL, EmbeddingSpec, RoutedEmbeddings, embeddings_client
from flows.ingest_ledger import Build
from flows.langflow.components import Component, Message, RunContext, as_text
from flows.langflow.rag_specs import (
    EMBEDDING_KINDS,
    EMBEDDING_PROVIDERS,
    KNOWLEDGE_KINDS,
    VECTOR_STORE_KINDS,
    collection_of,
)
from flows.vectorstores import Chunk, Hit, store_collection, vector_store
from shared.models import ANONYMOUS
from shared.settings import get_settings

# Metadata flowfleet adds to each chunk; never shown in search results.
SOURCE_KEY, INGEST_KEY = "flowfleet_source", "flowfleet_ingest"
_NAMED_SEPARATORS = {"/n/n": "\n\n", "/n": "\n", "/t": "\t", '" "': " ", '""': ""}


def unescape(text: str) -> str:
    """LangFlow's unescape of separators typed in the UI (``\\n``, ``\\t``, ``\\r``)."""
    return text.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r")


def rows_of(value: Any, text_key: str = "text") -> list[dict[str, Any]]:
    """An edge value as LangFlow Data rows: Message and text become ``{text_key: text}``."""
    if value is None:
        return []
    if isinstance(value, list):
        return [row for item in value for row in rows_of(item, text_key)]
    if isinstance(value, Message):
        return [{**value.data, text_key: value.text}]
    if isinstance(value, Mapping):
        return [dict(value)]
    return [{text_key: as_text(value)}]


def _keep_separator(value: Any) -> bool | str:
    text = str(value or "False")
    if text.lower() in ("false", "true"):
        return text.lower() == "true"
    return text.lower()  # "start" / "end"


def splitter_for(values: Mapping[str, Any]) -> TextSplitter:
    """The splitter a Split Text node's settings name."""
    size = int(values.get("chunk_size") or 1000)
    overlap = int(values.get("chunk_overlap") or 0)
    overlap = min(overlap, max(0, size - 1))  # the splitters refuse overlap >= size
    mode = str(values.get("mode") or "")
    if mode == "Recursive":
        separators = None
        raw = values.get("recursive_separators")
        if values.get("recursive_separators_bool") and raw:
            items = raw if isinstance(raw, list) else [raw]
            separators = [unescape(str(s)) for s in items]
        return RecursiveCharacterTextSplitter(
            chunk_size=size, chunk_overlap=overlap, separators=separators
        )
    separator = as_text(values.get("separator"))
    if separator == "Custom":
        separator = as_text(values.get("custom_separator"))
    separator = unescape(_NAMED_SEPARATORS.get(separator, separator))
    return CharacterTextSplitter(
        separator=separator,
        chunk_size=size,
        chunk_overlap=overlap,
        keep_separator=_keep_separator(values.get("keep_separator")),  # type: ignore[arg-type]
        length_function=len,
    )


class SplitTextComponent:
    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        text_key = as_text(values.get("text_key")) or "text"
        documents = [
            Document(
                page_content=as_text(row.get(text_key)),
                metadata={k: v for k, v in row.items() if k != text_key},
            )
            for row in rows_of(values.get("data_inputs"), text_key)
        ]
        chunks = splitter_for(values).split_documents(documents)
        clean = bool(values.get("clean_output"))
        rows = [
            {text_key: c.page_content} if clean else {text_key: c.page_content, **c.metadata}
            for c in chunks
        ]
        return {"dataframe": rows, "chunks": rows}


@dataclass(frozen=True)
class EmbeddingsHandle:
    """What an embeddings node hands on: its spec (identity) and its routed client."""

    spec: EmbeddingSpec
    client: RoutedEmbeddings


def _model_choice(value: Any) -> tuple[str, str | None]:
    """(model name, provider) of a model field: 1.8+ ModelInput (a list of ``{"name",
    "provider", ...}``, possibly typed as text: JSON or a dict's repr) or a plain name."""
    if isinstance(value, str) and value.startswith(("[", "{")):
        for parse in (json.loads, ast.literal_eval):
            try:
                return _model_choice(parse(value))
            except (ValueError, SyntaxError):
                continue
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, Mapping):
        provider = value.get("provider")
        return str(value.get("name") or "").strip(), str(provider) if provider else None
    return str(value or "").strip(), None


def embedding_spec(kind: str, values: Mapping[str, Any]) -> EmbeddingSpec:
    """The EmbeddingSpec of an embeddings node's values (any provider)."""
    _, model_field, url_field, _ = EMBEDDING_KINDS[kind]
    model, provider = _model_choice(values.get(model_field))
    provider = provider or as_text(values.get("provider")) or EMBEDDING_PROVIDERS.get(kind)
    base_url = as_text(values.get(url_field)).strip() if url_field else ""
    dimensions = values.get("dimensions")
    timeout = values.get("request_timeout")
    return EmbeddingSpec(
        model_name=model or DEFAULT_MODEL,
        provider=provider or None,
        base_url=base_url or None,
        dimensions=int(dimensions) if dimensions else None,
        batch_size=int(values.get("chunk_size") or 1000),
        max_retries=int(values.get("max_retries") or 0) if "max_retries" in values else 3,
        timeout_s=float(timeout) if timeout else None,
        model_kwargs=dict(values.get("model_kwargs") or {}),
    )


class EmbeddingsComponent:
    """An embeddings node; a client per spec (a tweak to its model makes another one)."""

    def __init__(self, kind: str, values: Mapping[str, Any]) -> None:
        self.kind = kind
        self.spec = embedding_spec(kind, values)  # routed now: an unknown URL fails the upload
        self._handles = {
            self.spec.cache_key(): EmbeddingsHandle(self.spec, embeddings_client(self.spec))
        }

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        spec = embedding_spec(self.kind, values)
        handle = self._handles.get(spec.cache_key())
        if handle is None:
            if len(self._handles) > 16:  # tweaked models: keep the cache bounded
                self._handles.clear()
            handle = EmbeddingsHandle(spec, embeddings_client(spec))
            self._handles[spec.cache_key()] = handle
        return {"embeddings": handle}


@dataclass
class IngestState:
    """A vector store node's ingest in this run: its key, and the build when it is ours."""

    key: str
    source: str
    build: Build | None
    done: bool = False
    chunks: int = 0


async def report_progress(ctx: RunContext, data: dict[str, Any]) -> None:
    """Tell the run's callbacks how an ingest is going (the worker makes them ``progress``
    events); callbacks without ``on_flowfleet_progress`` ignore it."""
    callbacks = ctx.config.get("callbacks")
    if not isinstance(callbacks, list | tuple):  # a callback manager: not ours to walk
        return
    for callback in callbacks:
        hook = getattr(callback, "on_flowfleet_progress", None)
        if hook is not None:
            await hook(data)


def run_owner(ctx: RunContext) -> str:
    """The key that runs this flow: collections are scoped to it."""
    meta = ctx.config.get("metadata") or {}
    return str(meta.get("owner") or ANONYMOUS)


class VectorStoreComponent:
    """Any supported vector store node, on the configured store."""

    ingest_field = "ingest_data"

    def __init__(self, node_id: str, kind: str) -> None:
        self.node_id = node_id
        self.kind = kind

    def _text_column(self, values: Mapping[str, Any]) -> str:
        return "text"

    def _wants_search(self, values: Mapping[str, Any]) -> bool:
        return True

    def _k(self, values: Mapping[str, Any]) -> int:
        return int(values.get("number_of_results") or 4)

    def _result_row(self, hit: Hit, values: Mapping[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in hit.metadata.items() if k not in (SOURCE_KEY, INGEST_KEY)}
        return {**shown, "text": hit.text}

    def _outputs(self, rows: list[dict[str, Any]], ingested: int | None) -> dict[str, Any]:
        return {"search_results": rows, "dataframe": rows, "vectorstoreconnection": None}

    def _embeddings(self, values: Mapping[str, Any]) -> EmbeddingsHandle:
        handle = values.get("embedding") or values.get("embedding_model")
        if not isinstance(handle, EmbeddingsHandle):
            raise ValueError(
                f"{self.node_id}: connect an embeddings component (Embedding Model, OpenAI "
                "Embeddings...) to its embedding input"
            )
        return handle

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        handle = self._embeddings(values)
        collection = store_collection(run_owner(ctx), collection_of(values), handle.spec.identity())
        store = vector_store()
        state = values.get("__ingest__")
        ingested = None
        if isinstance(state, IngestState) and state.build is not None and not state.done:
            ingested = await self._ingest(values, handle, collection, state, ctx)
        query = as_text(values.get("search_query")).strip()
        rows: list[dict[str, Any]] = []
        if query and self._wants_search(values):
            vector = await handle.client.aembed_query(query)
            k = self._k(values)
            threshold = float(values.get("search_score_threshold") or 0.0)
            terms = _lexical_terms(values)
            hits = await store.search(collection, vector, k * 4 if terms else k)
            if terms:  # hybrid: chunks holding the lexical terms come first
                hits = sorted(hits, key=lambda h: -(h.score + _term_hits(h.text, terms)))[:k]
            rows = [self._result_row(h, values) for h in hits if h.score >= threshold]
        return self._outputs(rows, ingested)

    async def _ingest(
        self,
        values: Mapping[str, Any],
        handle: EmbeddingsHandle,
        collection: str,
        state: IngestState,
        ctx: RunContext,
    ) -> int:
        column = self._text_column(values)
        rows = [
            {**r, "text": r.get(column)} if column != "text" else r
            for r in rows_of(values.get(self.ingest_field))
        ]
        rows = [r for r in rows if as_text(r.get("text")).strip()]
        limit = get_settings().rag_max_chunks
        if len(rows) > limit:
            raise ValueError(
                f"{self.node_id}: {len(rows)} chunks to ingest, over the limit of {limit} "
                "(FLOWFLEET_RAG_MAX_CHUNKS); raise the chunk size or split the files"
            )
        texts = [as_text(r.get("text")) for r in rows]
        progress = {"node_id": self.node_id, "key": state.key, "chunks": len(texts)}
        await report_progress(ctx, {**progress, "stage": "chunked"})
        vectors = await handle.client.aembed_documents(texts) if texts else []
        await report_progress(ctx, {**progress, "stage": "embedded"})
        chunks = [
            Chunk(
                id=hashlib.sha256(f"{state.key}:{i}".encode()).hexdigest()[:32],
                text=text,
                metadata={
                    **{k: v for k, v in row.items() if k != "text"},
                    SOURCE_KEY: state.source,
                    INGEST_KEY: state.key,
                },
            )
            for i, (text, row) in enumerate(zip(texts, rows, strict=True))
        ]
        store = vector_store()
        await store.add(collection, chunks, vectors)
        # This node's earlier ingests (older file versions) leave the collection.
        await store.delete(collection, {SOURCE_KEY: state.source}, keep={INGEST_KEY: state.key})
        assert state.build is not None
        await state.build.finish(len(chunks))
        state.done, state.chunks = True, len(chunks)
        await report_progress(ctx, {**progress, "stage": "stored"})
        return len(chunks)


_knowledge_handles: dict[str, EmbeddingsHandle] = {}


def knowledge_embeddings() -> EmbeddingsHandle:
    """The embedding model of knowledge bases (FLOWFLEET_KNOWLEDGE_EMBEDDING_MODEL).

    LangFlow records a knowledge base's model when the UI creates it; flowfleet's knowledge
    bases all use the configured one, so ingestion and retrieval always agree.
    """
    spec = EmbeddingSpec(model_name=get_settings().knowledge_embedding_model)
    handle = _knowledge_handles.get(spec.cache_key())
    if handle is None:
        handle = _knowledge_handles[spec.cache_key()] = EmbeddingsHandle(
            spec, embeddings_client(spec)
        )
    return handle


class KnowledgeComponent(VectorStoreComponent):
    """LangFlow's knowledge bases: ``Knowledge`` (1.13, mode Ingest or Retrieve),
    ``KnowledgeBase`` (retrieval) and ``KnowledgeIngestion``, on the owner's collection
    of the knowledge base's name. Retrieval rows are ``{"content", "_score", ...metadata}``
    as LangFlow's; ingestion vectorises the ``column_config`` column marked ``vectorize``.
    """

    ingest_field = "input_df"

    def _embeddings(self, values: Mapping[str, Any]) -> EmbeddingsHandle:
        return knowledge_embeddings()

    def _mode(self, values: Mapping[str, Any]) -> str:
        if self.kind == "KnowledgeIngestion":
            return "Ingest"
        if self.kind == "KnowledgeBase":
            return "Retrieve"
        return str(values.get("mode") or "Retrieve")

    def _wants_search(self, values: Mapping[str, Any]) -> bool:
        return self._mode(values) == "Retrieve"

    def _text_column(self, values: Mapping[str, Any]) -> str:
        config = values.get("column_config")
        for row in config if isinstance(config, list) else []:
            if isinstance(row, Mapping) and row.get("vectorize") and row.get("column_name"):
                return str(row["column_name"])
        return "text"

    def _k(self, values: Mapping[str, Any]) -> int:
        return int(values.get("top_k") or 5)

    def _result_row(self, hit: Hit, values: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {"content": hit.text, "_score": hit.score}
        if values.get("include_metadata") is not False:
            row.update((k, v) for k, v in hit.metadata.items() if k not in (SOURCE_KEY, INGEST_KEY))
        return row

    def _outputs(self, rows: list[dict[str, Any]], ingested: int | None) -> dict[str, Any]:
        summary = [{"chunks": ingested or 0}]
        return {"retrieve_data": rows, "dataframe_output": rows or summary}


def _lexical_terms(values: Mapping[str, Any]) -> list[str]:
    if values.get("search_method") != "Hybrid Search":
        return []
    text = as_text(values.get("lexical_terms"))
    return [t for t in (w.strip().lower() for w in text.replace(",", " ").split()) if t]


def _term_hits(text: str, terms: list[str]) -> float:
    # A term found counts as much as the whole cosine scale: lexical matches lead.
    lowered = text.lower()
    return float(sum(1 for t in terms if t in lowered))


def build_rag_component(nid: str, kind: str, values: dict[str, Any]) -> Component:
    """The component for a RAG node kind."""
    if kind == "SplitText":
        return SplitTextComponent()
    if kind in EMBEDDING_KINDS:
        return EmbeddingsComponent(kind, values)
    if kind in KNOWLEDGE_KINDS:
        return KnowledgeComponent(nid, kind)
    if kind in VECTOR_STORE_KINDS:
        return VectorStoreComponent(nid, kind)
    raise KeyError(kind)
