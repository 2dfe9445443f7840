"""RAG flows through the queue: two real workers sharing a `chroma run` server, keys on.

LangFlow's Vector Store RAG starter (1.8.4; its File node fed text until the files API
lands, see tests/flows/rag_flows.py) answers from the retrieved chunk; the document is
embedded once however many runs and workers ask (llm-sim counts embedding calls); a new
document is ingested again; one key never retrieves another's chunks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_auth import finish
from tests.flows.rag_flows import DOCUMENT, embedded_texts, search_only, starter, with_text_for_file
from tests.support.faults import isolated_stack
from tests.support.keys import as_key, make_key
from tests.support.llm_sim import free_port
from tests.support.sse import read_events
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` server (the cluster's shared store) on a free port."""
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    chroma = Path(sys.executable).with_name("chroma")
    log = (path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(chroma),
            "run",
            "--path",
            str(path / "data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((path / "server.log").read_text()[-2000:])
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def rag_stack(infra: dict[str, str], llm_sim: str, chroma_server: str) -> Iterator[Stack]:
    with isolated_stack(
        llm_sim,
        infra["redis_url"],
        workers=2,
        FLOWFLEET_AUTH_ENABLED="true",
        FLOWFLEET_VECTOR_STORE_URL=chroma_server,
        FLOWFLEET_VECTOR_STORE_MAP_HOSTED="true",
    ) as stack:
        yield stack


def _run(client: httpx.Client, flow_id: str, question: str) -> dict[str, Any]:
    response = client.post(f"/v1/flows/{flow_id}/runs", json={"input": question})
    assert response.status_code == 202, response.text
    run = finish(client, response.json()["id"], timeout=60)
    assert run["status"] == "succeeded", run
    return run


def _last_prompt(sim: httpx.Client) -> str:
    return str(sim.get("/_sim/requests").json()[-1]["messages"][-1]["content"])


def test_vector_store_rag_through_the_queue_ingests_once(
    rag_stack: Stack, sim: httpx.Client, llm_sim: str
) -> None:
    """Answers carry the retrieved chunk; 6 concurrent runs on 2 workers embed the document
    once; a new document version is embedded again and replaces the old chunks."""
    sim.delete("/_sim/embeddings")
    flow = with_text_for_file(starter(), DOCUMENT)
    with as_key(rag_stack, make_key(rag_stack, "runs:write,runs:read,flows:write", "a")) as a:
        assert a.put("/v1/flows/rag-a", json=flow).status_code in (200, 201)
        _run(a, "rag-a", "where do penguins live")
        assert _last_prompt(sim).startswith("Text: Penguins live in Antarctica and eat fish.")
        assert sorted(embedded_texts(llm_sim)) == sorted(
            [*DOCUMENT.split("\n"), "where do penguins live"]
        )

        sim.delete("/_sim/embeddings")
        questions = [f"what orbits the earth {i}" for i in range(6)]
        with ThreadPoolExecutor(6) as pool:
            runs = list(pool.map(lambda q: _run(a, "rag-a", q), questions))
        assert all(r["status"] == "succeeded" for r in runs)
        assert sorted(embedded_texts(llm_sim)) == sorted(questions)  # queries only

        # A new version of the document: ingested once more (by one of the two workers).
        sim.delete("/_sim/embeddings")
        new = with_text_for_file(starter(), "Owls hunt mice at night.")
        assert a.put("/v1/flows/rag-a", json=new).status_code in (200, 201)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda q: _run(a, "rag-a", q), ["who hunts at night"] * 4))
        texts = embedded_texts(llm_sim)
        assert texts.count("Owls hunt mice at night.") == 1
        assert texts.count("who hunts at night") == 4
        assert _last_prompt(sim).startswith("Text: Owls hunt mice at night.\n\n---")


def test_one_key_never_retrieves_another_keys_chunks(rag_stack: Stack, sim: httpx.Client) -> None:
    """Key B searching the same collection name finds nothing of key A's document."""
    scopes = "runs:write,runs:read,flows:write"
    with (
        as_key(rag_stack, make_key(rag_stack, scopes, "owner-a")) as a,
        as_key(rag_stack, make_key(rag_stack, scopes, "owner-b")) as b,
    ):
        flow = with_text_for_file(starter(), "The vault code is 4921 and only Alice knows it.")
        assert a.put("/v1/flows/rag-owner-a", json=flow).status_code in (200, 201)
        _run(a, "rag-owner-a", "what is the vault code")
        assert "4921" in _last_prompt(sim)

        assert b.put("/v1/flows/rag-owner-b", json=search_only(starter())).status_code in (
            200,
            201,
        )
        _run(b, "rag-owner-b", "what is the vault code")
        assert "4921" not in _last_prompt(sim)
        assert json.dumps(sim.get("/_sim/requests").json()[-1]).count("vault code is") == 0


def test_ingest_is_a_run_of_its_own(rag_stack: Stack, sim: httpx.Client, llm_sim: str) -> None:
    """POST /v1/flows/{id}/ingest queues a run of only the ingest part: it embeds the
    document and calls no chat model; a retrieval run then embeds only its question; a
    second ingest reuses the index. A flow with no ingest part fails saying so."""
    sim.delete("/_sim/embeddings")
    sim.delete("/_sim/requests")
    scopes = "runs:write,runs:read,flows:write"
    with as_key(rag_stack, make_key(rag_stack, scopes, "ingester")) as a:
        flow = with_text_for_file(starter(), "Otters hold hands while they sleep.")
        assert a.put("/v1/flows/rag-ingest", json=flow).status_code in (200, 201)
        accepted = a.post("/v1/flows/rag-ingest/ingest")
        assert accepted.status_code == 202, accepted.text
        assert accepted.headers["Location"] == f"/v1/runs/{accepted.json()['id']}"
        ingest = finish(a, accepted.json()["id"], timeout=60)
        assert ingest["status"] == "succeeded", ingest
        (summary,) = json.loads(ingest["output"]["text"])["ingests"]
        assert summary["reused"] is False
        assert summary["chunks"] == 1
        assert embedded_texts(llm_sim) == ["Otters hold hands while they sleep."]
        assert sim.get("/_sim/requests").json() == []  # no chat model ran
        progress = [e.data for e in read_events(a, ingest["id"]) if e.event == "progress"]
        assert [p["stage"] for p in progress] == ["chunked", "embedded", "stored"]
        assert {p["chunks"] for p in progress} == {1}

        _run(a, "rag-ingest", "how do otters sleep")
        assert embedded_texts(llm_sim)[1:] == ["how do otters sleep"]
        assert _last_prompt(sim).startswith("Text: Otters hold hands while they sleep.")

        again = finish(a, a.post("/v1/flows/rag-ingest/ingest", json={}).json()["id"], timeout=60)
        assert json.loads(again["output"]["text"])["ingests"][0]["reused"] is True
        assert len(embedded_texts(llm_sim)) == 2

        assert a.put("/v1/flows/no-ingest", json=search_only(starter())).status_code in (200, 201)
        failed = finish(a, a.post("/v1/flows/no-ingest/ingest").json()["id"], timeout=60)
        assert failed["status"] == "failed"
        assert "no ingest part" in failed["error"]["message"]


def _uploaded(client: httpx.Client, name: str, text: str) -> str:
    response = client.post("/v1/files", files={"file": (name, text.encode())})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _ask(client: httpx.Client, flow_id: str, question: str, tweaks: dict) -> dict[str, Any]:
    response = client.post(f"/v1/flows/{flow_id}/runs", json={"input": question, "tweaks": tweaks})
    assert response.status_code == 202, response.text
    run = finish(client, response.json()["id"], timeout=60)
    assert run["status"] == "succeeded", run
    return run


def test_the_unmodified_starter_on_an_uploaded_file(
    rag_stack: Stack, sim: httpx.Client, llm_sim: str
) -> None:
    """LangFlow 1.8.4's Vector Store RAG as exported, its File node given an uploaded file by
    a tweak: the answer's prompt holds the document; the second run embeds only its question
    (the file is not parsed or embedded again); a new file version is ingested once more."""
    sim.delete("/_sim/embeddings")
    flow = starter()
    (file_node,) = [n["id"] for n in flow["data"]["nodes"] if n["data"].get("type") == "File"]
    scopes = "runs:write,runs:read,flows:write"
    with as_key(rag_stack, make_key(rag_stack, scopes, "uploader")) as a:
        assert a.put("/v1/flows/vector-store-rag", json=flow).status_code in (200, 201)
        first_file = _uploaded(a, "animals.txt", DOCUMENT)
        tweaks = {file_node: {"path": [first_file]}}
        _ask(a, "vector-store-rag", "where do penguins live", tweaks)
        assert "Penguins live in Antarctica and eat fish." in _last_prompt(sim)
        # The starter's splitter (1000 characters, separator "\n") keeps this file whole.
        assert embedded_texts(llm_sim) == [DOCUMENT, "where do penguins live"]

        _ask(a, "vector-store-rag", "what orbits the earth", tweaks)
        assert embedded_texts(llm_sim)[2:] == ["what orbits the earth"]

        second_file = _uploaded(a, "animals-v2.txt", "Owls hunt mice at night.")
        _ask(a, "vector-store-rag", "who hunts at night", {file_node: {"path": [second_file]}})
        assert embedded_texts(llm_sim)[3:] == ["Owls hunt mice at night.", "who hunts at night"]
        assert "Owls hunt mice at night." in _last_prompt(sim)
        assert "Penguins" not in _last_prompt(sim)  # the older version left the collection
