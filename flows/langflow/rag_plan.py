"""Ingest once, retrieve per run: which part of a flow fills a vector store, and when to skip it.

At compile time, for each vector store node fed on ``ingest_data`` (an *ingest node*), the
plan finds the nodes upstream of that edge (File, Split Text...) and those of them that
feed nothing else (they exist only to fill the store). Per run, before any node starts,
``prepare`` computes each ingest node's key — owner, collection, embedding model, the
values of every node upstream of ``ingest_data`` (file ids, splitter settings, tweaks
and input included) and the files' content digests — and claims it in the ingest ledger:

- ready: the ingest node skips ingestion and its exclusive upstream nodes do not run
  (no file parsed, nothing embedded); the run embeds its query and searches;
- not ready: this run builds it under the ledger's lock (another worker wanting the
  same key waits for it), and marks it ready when the chunks are stored.

The key holds what decides the vectors, not the whole flow version: editing the prompt
or the chat model reuses the index; any change upstream of ``ingest_data`` (a new file,
new contents, other splitter settings, another embedding model) builds a new one, and
the node's older chunks leave the collection.

A search node waits for the ingest nodes of the same collection in the same run (LangFlow
exports often have two store nodes with no edge between them: one ingests, one searches).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from flows.ingest_ledger import Build, IngestTicket, ingest_ledger
from flows.langflow.components import Component, RunContext
from flows.langflow.document import LangflowDocument
from flows.langflow.rag import (
    EmbeddingsComponent,
    IngestState,
    KnowledgeComponent,
    embedding_spec,
    knowledge_embeddings,
    run_owner,
)
from flows.langflow.rag_specs import (
    INGEST_FIELDS,
    KNOWLEDGE_KINDS,
    VECTOR_STORE_KINDS,
    collection_of,
)
from flows.vectorstores import store_collection

_SEARCH_FIELDS = frozenset({"search_query", "number_of_results", "search_type"})
_SEARCH_FIELDS |= {"search_score_threshold", "search_method", "lexical_terms", "top_k"}
_SEARCH_FIELDS |= {"include_metadata", "include_embeddings", "metadata_filter", "mode"}


@dataclass
class IngestNode:
    node_id: str
    embedding_node: str | None
    upstream: list[str]  # every node upstream of ingest_data, in order
    exclusive: set[str]  # the upstream nodes that feed only the ingest


@dataclass
class RagRun:
    """One run's ingest decisions: nodes that need not run, and builds to finish."""

    precomputed: dict[str, dict[str, Any]] = field(default_factory=dict)
    states: list[IngestState] = field(default_factory=list)

    def summary(self) -> str:
        """What an ingest run did, as JSON: per ingest node, its key and chunks stored
        (``reused``: the content was ingested before, nothing was embedded)."""
        return json.dumps(
            {
                "ingests": [
                    {
                        "node_id": s.source.rsplit(":", 1)[-1],
                        "key": s.key,
                        "reused": s.build is None,
                        "chunks": s.chunks,
                    }
                    for s in self.states
                ]
            }
        )

    async def close(self) -> None:
        """Give back every build the run did not finish (failed, cancelled, skipped)."""
        for state in self.states:
            if state.build is not None and not state.done:
                state.done = True
                await state.build.abandon()


class RagPlan:
    """The ingest nodes of a compiled flow and the extra waits between store nodes."""

    NO_INGEST = (
        "this flow has no ingest part: no vector store node fed on ingest_data and no "
        "knowledge node fed on input_df; run it instead (POST /v1/flows/{id}/runs)"
    )

    def __init__(self, doc: LangflowDocument) -> None:
        self.doc = doc
        self.ingests: list[IngestNode] = []
        self.extra_deps: dict[str, list[str]] = {}
        stores = [n for n in doc.nodes.values() if n.kind in VECTOR_STORE_KINDS | KNOWLEDGE_KINDS]
        for node in stores:
            incoming = doc.incoming(node.id)
            feeds = [e.source for e in incoming if e.target_field in INGEST_FIELDS]
            if not feeds:
                continue
            embedding = next(
                (e.source for e in incoming if e.target_field in ("embedding", "embedding_model")),
                None,
            )
            upstream = self._upstream(feeds)
            self.ingests.append(
                IngestNode(node.id, embedding, upstream, self._exclusive(node.id, upstream))
            )
        for ingest in self.ingests:
            name = self._collection_literal(ingest.node_id)
            for node in stores:
                searches = any(e.target_field == "search_query" for e in doc.incoming(node.id))
                if (
                    node.id != ingest.node_id
                    and searches
                    and self._collection_literal(node.id) == name
                    and node.id not in self._upstream([ingest.node_id])
                ):
                    self.extra_deps.setdefault(node.id, []).append(ingest.node_id)

    def ingest_part(self) -> set[str]:
        """The nodes an ingest run runs: ingest nodes, everything upstream of them (their
        embeddings nodes included)."""
        return set(self._upstream([i.node_id for i in self.ingests]))

    def _collection_literal(self, nid: str) -> str:
        node = self.doc.nodes[nid]
        return collection_of({k: v.get("value") for k, v in node.template.items()})

    def _upstream(self, starts: list[str]) -> list[str]:
        seen: list[str] = []
        stack = list(starts)
        while stack:
            nid = stack.pop()
            if nid in seen or nid not in self.doc.nodes:
                continue
            seen.append(nid)
            stack.extend(e.source for e in self.doc.incoming(nid))
        return sorted(seen)

    def _exclusive(self, ingest_id: str, upstream: list[str]) -> set[str]:
        """Upstream nodes whose every output goes to other exclusive nodes or the ingest."""
        exclusive = set(upstream)
        changed = True
        while changed:
            changed = False
            for nid in list(exclusive):
                for edge in self.doc.edges:
                    if edge.source != nid:
                        continue
                    into_ingest = edge.target == ingest_id and edge.target_field in INGEST_FIELDS
                    if not into_ingest and edge.target not in exclusive:
                        exclusive.discard(nid)
                        changed = True
                        break
        return exclusive

    async def prepare(
        self,
        values: dict[str, dict[str, Any]],
        components: dict[str, Component],
        ctx: RunContext,
    ) -> RagRun:
        """Claim each ingest of this run: skip what is ready, hold the lock on the rest."""
        run = RagRun()
        if not self.ingests:
            return run
        owner = run_owner(ctx)
        meta = ctx.config.get("metadata") or {}
        flow_id = str(meta.get("flow_id") or "local")
        keyed = []
        for ingest in self.ingests:
            key, collection = await self._key(ingest, values, components, ctx, flow_id)
            keyed.append((key, collection, ingest))
        # A fixed order of claims: two runs never wait on each other's builds in a cycle.
        for key, collection, ingest in sorted(keyed, key=lambda item: item[0]):
            ticket = IngestTicket(key=key, owner=owner, flow_id=flow_id, collection=collection)
            try:
                build: Build | None = await ingest_ledger().claim(ticket)
            except BaseException:
                await run.close()
                raise
            state = IngestState(key=key, source=f"{flow_id}:{ingest.node_id}", build=build)
            run.states.append(state)
            values[ingest.node_id]["__ingest__"] = state
            if build is None:
                for nid in ingest.exclusive:
                    run.precomputed[nid] = {}
        return run

    async def _key(
        self,
        ingest: IngestNode,
        values: dict[str, dict[str, Any]],
        components: dict[str, Component],
        ctx: RunContext,
        flow_id: str,
    ) -> tuple[str, str]:
        owner = run_owner(ctx)
        embedding = ""
        if isinstance(components.get(ingest.node_id), KnowledgeComponent):
            embedding = knowledge_embeddings().spec.identity()
        elif ingest.embedding_node is not None:
            comp = components.get(ingest.embedding_node)
            if isinstance(comp, EmbeddingsComponent):
                embedding = embedding_spec(comp.kind, values[ingest.embedding_node]).identity()
        collection = store_collection(owner, collection_of(values[ingest.node_id]), embedding)
        parts: list[Any] = [owner, flow_id, ingest.node_id, collection, embedding]
        for nid in ingest.upstream:
            node = self.doc.nodes[nid]
            parts.append([nid, node.kind, _public(values[nid])])
            parts.append(
                sorted([e.source, e.source_output, e.target_field] for e in self.doc.incoming(nid))
            )
            file_ids = _file_ids(values[nid]) if node.kind == "File" else []
            # The run's files (the owner's, ``RunContext.files``): their contents' digests.
            source = getattr(ctx, "files", None)
            if file_ids and source is not None:
                parts.append([(await source.info(file_id)).sha256 for file_id in file_ids])
        store_values = {
            k: v for k, v in _public(values[ingest.node_id]).items() if k not in _SEARCH_FIELDS
        }
        parts.append(store_values)
        raw = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(raw.encode()).hexdigest(), collection


def _public(values: dict[str, Any]) -> dict[str, Any]:
    # Edge-fed and private entries (``__ingest__``, ``__model__``) are not settings.
    return {k: v for k, v in values.items() if not k.startswith("__")}


def _file_ids(values: dict[str, Any]) -> list[str]:
    raw = values.get("path")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.startswith("[") else [raw]
        except ValueError:
            raw = [raw]
    return [str(v) for v in raw or [] if v]
