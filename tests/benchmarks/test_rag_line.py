"""`make bench`'s RAG line runs end to end with tiny numbers (the figures are not checked):
uploaded files ingested on a real `chroma run` server with llm-sim counting the embedding
calls, the collection filled to the asked size, retrieval runs beside Basic Prompting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.harness import main
from benchmarks.rag import document

pytestmark = pytest.mark.slow  # about 40 s: two closed-loop levels and their warm-ups


def test_the_rag_line_ingests_fills_and_runs_with_tiny_numbers(tmp_path: Path) -> None:
    argv = ["--mode", "compare", "--flows", "rag", "--rag-docs", "6", "--rag-chunks", "400"]
    argv += ["--rag-clients", "2", "--rag-duration", "1.5", "--out", str(tmp_path)]
    main(argv)

    rag = json.loads((tmp_path / "bench.json").read_text())["rag"]
    ingest = rag["ingest"]
    assert ingest["documents"] == 6
    assert ingest["bytes"] == sum(len(document(i).encode()) for i in range(6))
    # The starter's splitter (1000 characters) cuts each ~2 KB document in a few chunks, all
    # embedded in one request (the embeddings node's chunk_size is 1000 texts).
    assert ingest["embedding_calls"] == 1
    assert 6 < ingest["embedded_texts"] == rag["ingested_chunks"] < 400
    assert rag["collection_chunks"] == 400
    assert rag["search"]["k"] == 4
    assert rag["search"]["p50_ms"] > 0
    assert rag["rag_llm_s"] > 0.98  # its prompt holds the chunks, and llm-sim echoes it
    for name in ("rag", "basic"):
        assert rag[name]["concurrency"] == 2
        assert rag[name]["completed"] > 0, rag[name]
        assert rag[name]["errors"] == 0, rag[name]["error_samples"]
    assert "| rag | 2 |" in (tmp_path / "bench.md").read_text()
