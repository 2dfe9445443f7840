"""RAG flows for the tests: LangFlow's Vector Store RAG starter, and small store-only flows."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.flows.langflow_fixtures import clone
from tests.flows.langflow_nodes import edge
from tests.support.fixtures import LANGFLOW_FIXTURES

VECTOR_STORE_RAG = "starters-1.8.4/Vector Store RAG.json"
DOCUMENT = (
    "Zebras live on the grasslands of Africa.\n"
    "Penguins live in Antarctica and eat fish.\n"
    "The moon orbits the earth every month."
)


def starter(name: str = VECTOR_STORE_RAG) -> dict[str, Any]:
    """A fresh copy of a LangFlow starter export."""
    return json.loads((LANGFLOW_FIXTURES / name).read_text())


def nodes_of(flow: dict[str, Any], data_type: str) -> list[dict[str, Any]]:
    return [n for n in flow["data"]["nodes"] if n.get("data", {}).get("type") == data_type]


def with_text_for_file(flow: dict[str, Any], text: str, chunk_size: int = 60) -> dict[str, Any]:
    """The starter with its File node fed text instead (a Text Input under the same id).

    For in-process tests that need no files API; the end-to-end tests run the export as it
    is, with an uploaded file.
    """
    flow = clone(flow)
    (file_node,) = nodes_of(flow, "File")
    file_node["data"]["type"] = "TextInput"
    file_node["data"]["node"]["template"] = {
        "input_value": {"type": "str", "value": text, "input_types": ["Message"]}
    }
    file_node["data"]["node"]["outputs"] = [{"name": "text", "types": ["Message"]}]
    for e in flow["data"]["edges"]:
        if e["source"] == file_node["id"]:
            e["data"]["sourceHandle"]["name"] = "text"
            e.pop("sourceHandle", None)
    for split in nodes_of(flow, "SplitText"):
        split["data"]["node"]["template"]["chunk_size"]["value"] = chunk_size
        split["data"]["node"]["template"]["chunk_overlap"]["value"] = 0
    return flow


def search_only(flow: dict[str, Any]) -> dict[str, Any]:
    """The starter without its ingest half: ChatInput -> search -> parser -> ... -> output."""
    flow = clone(flow)
    ingest_ids = set()
    for e in flow["data"]["edges"]:
        if e["data"]["targetHandle"]["fieldName"] == "ingest_data":
            ingest_ids.add(e["target"])
    keep_out = set(ingest_ids)
    for e in flow["data"]["edges"]:
        if e["target"] in ingest_ids:
            keep_out.add(e["source"])
    for n in nodes_of(flow, "File") + nodes_of(flow, "TextInput"):
        keep_out.add(n["id"])
    for n in nodes_of(flow, "SplitText"):
        keep_out.add(n["id"])
    flow["data"]["nodes"] = [n for n in flow["data"]["nodes"] if n["id"] not in keep_out]
    flow["data"]["edges"] = [
        e
        for e in flow["data"]["edges"]
        if e["source"] not in keep_out and e["target"] not in keep_out
    ]
    return flow


def embedding_calls(sim_root: str) -> list[dict[str, Any]]:
    """The embeddings request bodies llm-sim received, oldest first."""
    return httpx.get(f"{sim_root}/_sim/embeddings").json()


def embedded_texts(sim_root: str) -> list[str]:
    """Every text llm-sim embedded, in order."""
    texts: list[str] = []
    for body in embedding_calls(sim_root):
        value = body["input"]
        texts.extend([value] if isinstance(value, str) else value)
    return texts


__all__ = ["DOCUMENT", "edge", "embedded_texts", "starter", "with_text_for_file"]


def knowledge_ingest_flow(text: str, knowledge_base: str = "", chunk_size: int = 60) -> dict:
    """Text -> Split Text -> Knowledge (mode Ingest) -> Chat Output, from starter nodes.

    LangFlow ships no ingestion starter (knowledge bases are filled from its UI); this is
    the 1.13 Knowledge node in Ingest mode, as the UI would export it.
    """
    rag = with_text_for_file(starter(), text, chunk_size)
    text_node = next(n for n in rag["data"]["nodes"] if n["data"]["type"] == "TextInput")
    split = next(n for n in rag["data"]["nodes"] if n["data"]["type"] == "SplitText")
    output = next(n for n in rag["data"]["nodes"] if n["data"]["type"] == "ChatOutput")
    knowledge = clone(
        next(
            n
            for n in starter("starters-1.13.0/Vector Store RAG.json")["data"]["nodes"]
            if n.get("data", {}).get("type") == "Knowledge"
        )
    )
    knowledge["data"]["node"]["template"]["mode"]["value"] = "Ingest"
    knowledge["data"]["node"]["template"]["knowledge_base"]["value"] = knowledge_base
    nodes = [text_node, split, knowledge, output]
    edges = [
        edge(text_node["id"], "text", split["id"], "data_inputs"),
        edge(split["id"], "dataframe", knowledge["id"], "input_df"),
        edge(knowledge["id"], "dataframe_output", output["id"], "input_value"),
    ]
    return {"name": "Knowledge Ingestion", "data": {"nodes": nodes, "edges": edges}}
