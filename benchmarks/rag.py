"""`make bench`'s RAG line (issue 21), on a real `chroma run` server shared by the worker:

- ingest: 1,000 generated documents (~2 KB each) uploaded with ``POST /v1/files``, then one
  ``POST /v1/flows/{id}/ingest`` of LangFlow's Vector Store RAG starter (1.8.4, unmodified;
  its File node given the 1,000 file ids by a tweak): seconds, and the embedding calls
  llm-sim counted;
- retrieval: the same collection filled to 100,000 chunks, the rest added straight into the
  Chroma server with llm-sim's own vectors (``flowfleet.llm_sim.embedding_vector``, what
  the flow's embeddings would have stored; embedding 97,000 chunks through the flow would
  time llm-sim, not flowfleet), then the starter's retrieval half (question → embed →
  search → prompt → model) at 64 clients on flowfleet, beside Basic Prompting at 64
  clients in the same run;
- the search itself: Chroma's query for the starter's k chunks, timed from this process
  a few hundred times.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from benchmarks import designs
from flowfleet.llm_sim import embedding_vector, reply_tokens
from tests.flows.rag_flows import nodes_of, search_only, starter
from tests.support.llm_sim import free_port
from tests.support.stack import Proc

DOCS = 1000
DOC_BYTES = 2000
TARGET_CHUNKS = 100_000
ADD_BATCH = 5000  # under Chroma's max batch size
SEARCH_QUERIES = 300
RAG_FLOW_ID = "bench-rag"
INGEST_FLOW_ID = "bench-rag-ingest"

# A fixed vocabulary, so documents and questions share words (retrieval finds something).
_WORDS = (
    "penguin zebra owl otter moon earth river mountain forest desert ocean island city "
    "harbour bridge tower garden market library school engine rocket planet comet storm "
    "winter summer autumn spring fish bread cheese apple copper silver gold iron glass "
    "paper stone cloud thunder valley canyon glacier volcano meadow orchard vineyard"
).split()


def document(i: int, size: int = DOC_BYTES) -> str:
    """Deterministic text of about ``size`` bytes: lines of words from a fixed vocabulary."""
    rng = random.Random(i)
    lines, total = [], 0
    while total < size:
        line = f"Document {i} says the " + " ".join(rng.choices(_WORDS, k=10)) + "."
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def question(i: int) -> str:
    rng = random.Random(10_000_000 + i)
    return "where is the " + " ".join(rng.choices(_WORDS, k=3)) + f" ({uuid.uuid4().hex[:6]})"


RAG = designs.BenchFlow("rag", RAG_FLOW_ID, designs.FLOW_FILE, question)


def start_chroma() -> Proc:
    """A `chroma run` server on a free port (as `flowfleet up` starts it for several workers)."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="bench-chroma-"))
    chroma = Path(sys.executable).with_name("chroma")
    log = data / "server.log"
    argv = [str(chroma), "run", "--path", str(data / "data"), "--host", "127.0.0.1"]
    with log.open("wb") as out:
        popen = subprocess.Popen([*argv, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    proc = Proc("chroma", popen, log, port)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{proc.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"chroma run did not start:\n{proc.output()[-2000:]}")
        time.sleep(0.2)


async def _finish(http: httpx.AsyncClient, run_id: str, timeout_s: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = (await http.get(f"/v1/runs/{run_id}/wait?timeout=30")).json()
        if run.get("status") in designs.TERMINAL:
            return run  # type: ignore[no-any-return]
    raise RuntimeError(f"run {run_id} did not finish in {timeout_s} s")


async def ingest(http: httpx.AsyncClient, sim_url: str, docs: int) -> dict[str, Any]:
    """Upload ``docs`` documents, then one ingest run of the starter over all of them."""
    flow = starter()
    (file_node,) = [n["id"] for n in nodes_of(flow, "File")]
    (r := await http.put(f"/v1/flows/{INGEST_FLOW_ID}", json=flow)).raise_for_status()
    sem = asyncio.Semaphore(16)

    async def upload(i: int) -> str:
        async with sem:
            files = {"file": (f"doc-{i:04}.txt", document(i).encode())}
            r = await http.post("/v1/files", files=files)
            if r.status_code != 201:
                raise RuntimeError(f"upload {i}: {r.status_code} {r.text[:300]}")
            return str(r.json()["id"])

    began = time.perf_counter()
    ids = await asyncio.gather(*(upload(i) for i in range(docs)))
    upload_s = time.perf_counter() - began
    httpx.delete(f"{sim_url}/_sim/embeddings").raise_for_status()
    began = time.perf_counter()
    r = await http.post(
        f"/v1/flows/{INGEST_FLOW_ID}/ingest", json={"tweaks": {file_node: {"path": ids}}}
    )
    if r.status_code != 202:
        raise RuntimeError(f"ingest: {r.status_code} {r.text[:300]}")
    run = await _finish(http, r.json()["id"])
    ingest_s = time.perf_counter() - began
    if run["status"] != "succeeded":
        raise RuntimeError(f"ingest run {run['status']}: {run.get('error')}")
    calls = httpx.get(f"{sim_url}/_sim/embeddings").json()
    texts = sum(len(c["input"]) if isinstance(c["input"], list) else 1 for c in calls)
    out = run["output"]["text"]
    result = {
        "documents": docs,
        "bytes": sum(len(document(i).encode()) for i in range(docs)),
        "upload_s": round(upload_s, 2),
        "ingest_s": round(ingest_s, 2),
        "embedding_calls": len(calls),
        "embedded_texts": texts,
        "ingest_output": out,
    }
    print(f"rag ingest: {result}", flush=True)
    return result


def fill(chroma_url: str, target: int) -> tuple[Any, int]:
    """Add llm-sim-style chunks straight into the flow's collection up to ``target``."""
    import chromadb

    host, port = chroma_url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port))
    (collection,) = [c for c in client.list_collections() if c.count() > 0]
    have = collection.count()
    began = time.perf_counter()
    for start in range(have, target, ADD_BATCH):
        n = min(ADD_BATCH, target - start)
        texts = [document(1_000_000 + start + j, 300) for j in range(n)]
        collection.add(
            ids=[f"bench-fill-{start + j}" for j in range(n)],
            documents=texts,
            embeddings=[embedding_vector(t) for t in texts],
            metadatas=[{"source": "bench-fill"} for _ in range(n)],
        )
    print(
        f"rag fill: {have} ingested + {target - have} added in "
        f"{time.perf_counter() - began:.1f} s; count {collection.count()}",
        flush=True,
    )
    return collection, have


def rag_llm_s(sim_url: str, sim: dict[str, Any], runs: int) -> float:
    """The simulated model's time in a retrieval run (median of the last ``runs`` calls).

    llm-sim's reply echoes the user message, which in this flow holds the retrieved chunks:
    its replies run to a few hundred tokens, not Basic Prompting's 40, so the model takes
    seconds; the overhead columns subtract this, not Basic Prompting's model time.
    """
    bodies = httpx.get(f"{sim_url}/_sim/requests").json()[-runs:]
    seconds = [
        sim["ttft_s"] + sim["token_s"] * (len(reply_tokens(b["messages"], sim["tokens"])) - 1)
        for b in bodies
    ]
    return round(statistics.median(seconds), 3)


def search_p50(collection: Any, k: int, queries: int) -> dict[str, Any]:
    """Chroma's query for k chunks, from this process, over HTTP, one at a time."""
    times = []
    for i in range(queries):
        vector = embedding_vector(question(i))
        began = time.perf_counter()
        collection.query(query_embeddings=[vector], n_results=k)
        times.append(time.perf_counter() - began)
    times.sort()
    result = {
        "queries": queries,
        "k": k,
        "p50_ms": round(statistics.median(times) * 1000, 2),
        "p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 2),
    }
    print(f"rag search: {result}", flush=True)
    return result


async def rag_line(
    sim_url: str,
    redis_url: str,
    *,
    docs: int,
    chunks: int,
    clients: int,
    duration: float,
    run_level: Any,
    sim: dict[str, Any],
    llm_s: float,
) -> dict[str, Any]:
    """The whole RAG line; ``run_level`` is the harness's (one design, one level)."""
    chroma = start_chroma()
    out: dict[str, Any] = {"store": "chroma run (one server, shared by the worker)"}
    extra = {
        "FLOWFLEET_VECTOR_STORE_URL": chroma.url,
        "FLOWFLEET_VECTOR_STORE_MAP_HOSTED": "true",  # the starter's AstraDB nodes
        "FLOWFLEET_MAX_FILES_PER_NODE": str(docs),  # the File node reads all of them
        "FLOWFLEET_MAX_FILES_PER_OWNER": str(docs + 10),
    }
    try:
        design = await designs.start_flowfleet(sim_url, redis_url, extra=extra)
        try:
            out["ingest"] = await ingest(design.http, sim_url, docs)
            collection, ingested = await asyncio.to_thread(fill, chroma.url, chunks)
            out["collection_chunks"] = chunks
            out["ingested_chunks"] = ingested
            k = int(nodes_of(starter(), "AstraDB")[0]["data"]["node"]["template"]
                    ["number_of_results"]["value"])  # fmt: skip
            out["search"] = await asyncio.to_thread(search_p50, collection, k, SEARCH_QUERIES)
            r = await design.http.put(f"/v1/flows/{RAG_FLOW_ID}", json=search_only(starter()))
            r.raise_for_status()
            basic_tweaks = design.tweaks
            design.flow, design.tweaks = RAG, None
            await designs.warm_up(design, 8)
            out["rag_llm_s"] = rag_llm_s(sim_url, sim, 8)
            print(f"level {clients} (rag, then basic); rag model time {out['rag_llm_s']} s")
            out["rag"] = await run_level(design, clients, duration, out["rag_llm_s"])
            design.flow, design.tweaks = designs.BASIC, basic_tweaks
            out["basic"] = await run_level(design, clients, duration, llm_s)
        finally:
            await design.close()
    finally:
        chroma.stop()
    return out
