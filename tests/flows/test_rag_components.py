"""RAG components in process against a real llm-sim over HTTP and an embedded Chroma.

llm-sim's embeddings are a hashed bag of words, so retrieval is checkable: the chunk that
shares words with the question comes first. The File node of LangFlow's Vector Store RAG
starter is fed text here (``with_text_for_file``); tests/events/test_rag_runs.py runs the
export as it is through the queue.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.base import FlowInput, FlowValidationError
from flows.langflow.compiler import compile_langflow
from flows.langflow.components import Message, RunContext
from flows.langflow.document import parse_document
from flows.langflow.rag import SplitTextComponent
from flows.langflow.validation import validate_document, validate_tweaks
from shared.settings import get_settings
from tests.flows.conftest import sim_requests
from tests.flows.rag_flows import (
    DOCUMENT,
    embedded_texts,
    knowledge_ingest_flow,
    search_only,
    starter,
    with_text_for_file,
)


@pytest.fixture
def store(sim: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An embedded Chroma of this test; llm-sim's embeddings log starts empty."""
    monkeypatch.setenv("FLOWFLEET_VECTOR_STORE_PATH", str(tmp_path / "chroma"))
    get_settings.cache_clear()
    root = sim.removesuffix("/v1")
    httpx.delete(f"{root}/_sim/embeddings")
    yield root
    get_settings.cache_clear()


def _config(owner: str) -> dict[str, Any]:
    return {"metadata": {"owner": owner, "flow_id": "rag-test"}}


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_sim_embeddings_put_texts_sharing_words_near(llm_sim: str) -> None:
    """Unit vectors, deterministic, nearer for shared words; base64 decodes to the same."""
    texts = ["penguins eat fish", "penguins eat fish", "fish penguins", "the moon orbits"]
    body = httpx.post(f"{llm_sim}/v1/embeddings", json={"input": texts, "model": "m"}).json()
    vectors = [d["embedding"] for d in body["data"]]
    assert all(math.isclose(_cosine(v, v), 1.0, rel_tol=1e-6) for v in vectors)
    assert vectors[0] == vectors[1]
    assert _cosine(vectors[0], vectors[2]) > 0.7 > 0.3 > _cosine(vectors[0], vectors[3])
    raw = httpx.post(
        f"{llm_sim}/v1/embeddings",
        json={"input": "penguins eat fish", "encoding_format": "base64", "dimensions": 64},
    ).json()["data"][0]["embedding"]
    decoded = struct.unpack("<64f", base64.b64decode(raw))
    assert math.isclose(sum(x * x for x in decoded), 1.0, rel_tol=1e-5)
    recorded = httpx.get(f"{llm_sim}/_sim/embeddings").json()
    assert recorded[-1]["input"] == "penguins eat fish"


async def test_split_text_follows_langflow_settings() -> None:
    """Character mode splits on the (unescaped) separator; Recursive on its cascade."""
    text = Message("aaa bbb\\nccc ddd\neee fff", data={"file_path": "doc.txt"})
    ctx = RunContext(config={})
    character = await SplitTextComponent().run(
        {"data_inputs": text, "chunk_size": 8, "chunk_overlap": 0, "separator": "\n"}, ctx
    )
    assert [r["text"] for r in character["dataframe"]] == ["aaa bbb\\nccc ddd", "eee fff"]
    assert character["dataframe"][0]["file_path"] == "doc.txt"
    escaped = await SplitTextComponent().run(
        {"data_inputs": text, "chunk_size": 8, "chunk_overlap": 0, "separator": "\\n"}, ctx
    )
    assert escaped["dataframe"] == character["dataframe"]  # "\\n" typed means a newline
    recursive = await SplitTextComponent().run(
        {
            "data_inputs": [{"text": "one two three four five six"}],
            "mode": "Recursive",
            "chunk_size": 10,
            "chunk_overlap": 0,
            "clean_output": True,
        },
        ctx,
    )
    assert all(len(r["text"]) <= 10 for r in recursive["dataframe"])
    assert " ".join(r["text"] for r in recursive["dataframe"]) == "one two three four five six"


async def test_vector_store_rag_retrieves_the_chunk_and_ingests_once(store: str) -> None:
    """The 1.8.4 starter: the matching chunk leads the prompt; a second run embeds only
    its question (the document is not embedded again)."""
    flow = compile_langflow(json.dumps(with_text_for_file(starter(), DOCUMENT)))
    owner = uuid.uuid4().hex
    await flow.ainvoke(FlowInput("where do penguins live"), _config(owner))
    prompt = sim_requests(store + "/v1")[-1]["messages"][-1]["content"]
    assert prompt.startswith("Text: Penguins live in Antarctica and eat fish.")
    assert "Question: where do penguins live" in prompt
    first = embedded_texts(store)
    assert sorted(first[:-1]) == sorted(DOCUMENT.split("\n"))  # the ingest, then the query
    assert first[-1] == "where do penguins live"

    await flow.ainvoke(FlowInput("what orbits the earth"), _config(owner))
    assert embedded_texts(store)[len(first) :] == ["what orbits the earth"]
    prompt = sim_requests(store + "/v1")[-1]["messages"][-1]["content"]
    assert prompt.startswith("Text: The moon orbits the earth every month.")


async def test_a_new_document_reingests_and_its_old_chunks_leave(store: str) -> None:
    """Other text upstream of the ingest is another key: embedded again, old chunks gone."""
    owner = uuid.uuid4().hex
    first = compile_langflow(json.dumps(with_text_for_file(starter(), DOCUMENT)))
    await first.ainvoke(FlowInput("penguins"), _config(owner))
    before = len(embedded_texts(store))
    second = compile_langflow(json.dumps(with_text_for_file(starter(), "Owls hunt mice at night.")))
    await second.ainvoke(FlowInput("who hunts at night"), _config(owner))
    assert embedded_texts(store)[before:] == ["Owls hunt mice at night.", "who hunts at night"]
    prompt = sim_requests(store + "/v1")[-1]["messages"][-1]["content"]
    assert prompt.startswith("Text: Owls hunt mice at night.\n\n---")  # the only chunk left


async def test_a_tweak_to_the_splitter_is_another_ingest(store: str) -> None:
    """Splitter settings are part of the key: a tweak re-splits and re-embeds."""
    flow_json = with_text_for_file(starter(), DOCUMENT)
    split_id = next(n["id"] for n in flow_json["data"]["nodes"] if n["data"]["type"] == "SplitText")
    flow = compile_langflow(json.dumps(flow_json))
    owner = uuid.uuid4().hex
    await flow.ainvoke(FlowInput("penguins"), _config(owner))
    before = len(embedded_texts(store))
    tweaks = {split_id: {"chunk_size": 1000}}
    await flow.ainvoke(FlowInput("penguins", tweaks=tweaks), _config(owner))
    assert embedded_texts(store)[before:] == [DOCUMENT, "penguins"]


async def test_one_owner_never_retrieves_another_owners_chunks(store: str) -> None:
    """Key A's ingest is invisible to key B's search of the same collection name."""
    await compile_langflow(json.dumps(with_text_for_file(starter(), DOCUMENT))).ainvoke(
        FlowInput("penguins"), _config("owner-a")
    )
    searcher = compile_langflow(json.dumps(search_only(starter())))
    await searcher.ainvoke(FlowInput("where do penguins live"), _config("owner-b"))
    prompt = sim_requests(store + "/v1")[-1]["messages"][-1]["content"]
    assert "Penguins" not in prompt
    assert prompt.startswith("\n\n---")  # no context at all
    await searcher.ainvoke(FlowInput("where do penguins live"), _config("owner-a"))
    prompt = sim_requests(store + "/v1")[-1]["messages"][-1]["content"]
    assert prompt.startswith("Text: Penguins live in Antarctica")


def test_hosted_stores_are_refused_unless_mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """AstraDB is a 422 naming the node and the setting when hosted stores are not mapped."""
    monkeypatch.setenv("FLOWFLEET_VECTOR_STORE_MAP_HOSTED", "false")
    get_settings.cache_clear()
    problems = validate_document(parse_document(json.dumps(search_only(starter()))))
    (problem,) = problems
    assert problem.node_type == "AstraDB"
    assert problem.node_id
    assert problem.node_id in problem.message
    assert "FLOWFLEET_VECTOR_STORE_MAP_HOSTED" in problem.message
    text = json.dumps(search_only(starter()))
    try:
        with pytest.raises(FlowValidationError):
            compile_langflow(text)
    finally:
        get_settings.cache_clear()


async def test_knowledge_bases_ingest_once_and_serve_the_1_13_starters(store: str) -> None:
    """A Knowledge node in Ingest mode fills the owner's knowledge base once; LangFlow
    1.13's Vector Store RAG (Knowledge -> Parser "{content}" -> Agent) and 1.8's Knowledge
    Retrieval (KnowledgeBase) retrieve from it, unmodified."""
    owner = uuid.uuid4().hex
    ingest = compile_langflow(json.dumps(knowledge_ingest_flow(DOCUMENT)))
    done = await ingest.ainvoke(FlowInput(None), _config(owner))
    assert '"chunks": 3' in (done.text or "")
    await ingest.ainvoke(FlowInput(None), _config(owner))
    assert sorted(embedded_texts(store)) == sorted(DOCUMENT.split("\n"))  # once

    rag = compile_langflow(json.dumps(starter("starters-1.13.0/Vector Store RAG.json")))
    await rag.ainvoke(FlowInput("where do penguins live"), _config(owner))
    agent_call = sim_requests(store + "/v1")[0]
    assert agent_call["messages"][-1]["content"].startswith(
        "Text: Penguins live in Antarctica and eat fish."
    )

    retrieval = compile_langflow(json.dumps(starter("starters-1.8.4/Knowledge Retrieval.json")))
    found = await retrieval.ainvoke(FlowInput("what orbits the earth"), _config(owner))
    assert "The moon orbits the earth every month." in (found.text or "")
    other = await retrieval.ainvoke(FlowInput("what orbits the earth"), _config("someone-else"))
    assert "moon" not in (other.text or "")


def test_tweaks_cannot_point_embeddings_elsewhere() -> None:
    """An embeddings node's connection fields are fixed by the flow, as a model node's are."""
    doc = parse_document(json.dumps(starter()))
    embedder = next(n for n in doc.nodes.values() if n.kind == "EmbeddingModel")
    problems = validate_tweaks(doc, {embedder.id: {"api_base": "http://attacker.example/v1"}})
    assert [p.field for p in problems] == ["api_base"]
    assert "FLOWFLEET_TWEAKABLE_MODEL_FIELDS" in problems[0].message
    assert validate_tweaks(doc, {embedder.id: {"chunk_size": 10}}) == []


def test_embeddings_route_like_models(sim: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every provider's embeddings node gets a routed OpenAI-API client with the backend's
    key; a base URL that is no configured backend is refused (the flow cannot pick one)."""
    from flows.embeddings import embeddings_client
    from flows.langflow.rag import embedding_spec
    from flows.routing import BackendNotAllowed

    monkeypatch.setenv("FLOWFLEET_BACKENDS", f'[{{"name":"sim","base_url":"{sim}"}}]')
    monkeypatch.delenv("FLOWFLEET_ALLOW_ADHOC_BACKENDS", raising=False)
    get_settings.cache_clear()
    google = embedding_spec("GoogleGenerativeAIEmbeddings", {"model_name": "text-embedding-004"})
    assert google.provider == "Google Generative AI"
    assert google.backend().api == "openai"  # the embedded default: llm-sim's /v1
    client = embeddings_client(embedding_spec("OpenAIEmbeddings", {"model": "m", "api_key": "x"}))
    assert str(client.openai_api_base).rstrip("/") == sim.rstrip("/")
    assert client.openai_api_key is not None
    assert client.openai_api_key.get_secret_value() != "x"  # never the flow's
    ollama = embedding_spec("OllamaEmbeddings", {"base_url": "http://10.0.0.9:11434"})
    with pytest.raises(BackendNotAllowed, match="not a configured backend"):
        ollama.backend()
