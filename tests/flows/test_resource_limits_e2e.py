"""Regex and graph bombs against the running service: an API process, a worker, llm-sim."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from tests.flows.langflow_fixtures import load
from tests.flows.langflow_nodes import basic_nodes, edge, router_node, with_id
from tests.flows.test_langflow_branches import CATASTROPHIC
from tests.support.stack import Stack, wait_for_run


def _put(client: httpx.Client, flow_id: str, body: bytes) -> httpx.Response:
    return client.put(
        f"/v1/flows/{flow_id}", content=body, headers={"content-type": "application/json"}
    )


def _regex_flow(pattern: str) -> dict[str, Any]:
    """ChatInput -> If-Else (regex) -> one ChatOutput per case; no model."""
    chat_in, _, chat_out = basic_nodes()
    router = router_node(operator="regex", match_text=pattern)
    rid = router["id"]
    return {
        "nodes": [
            chat_in,
            router,
            with_id(chat_out, "ChatOutput-T"),
            with_id(chat_out, "ChatOutput-F"),
        ],
        "edges": [
            edge(chat_in["id"], "message", rid, "input_text"),
            edge(rid, "true_result", "ChatOutput-T", "input_value"),
            edge(rid, "false_result", "ChatOutput-F", "input_value"),
        ],
    }


def test_regex_bomb_runs_do_not_stall_other_runs(stack: Stack, client: httpx.Client) -> None:
    """(a|) x 49 + $ would backtrack 2**49 times in Python's re; on RE2 the bomb runs and a
    normal run submitted with them all finish promptly on the same worker."""
    bomb = _put(client, "regex-bomb", json.dumps(_regex_flow(CATASTROPHIC)).encode())
    assert bomb.status_code in (200, 201), bomb.text
    plain = _put(client, "plain-prompting", json.dumps(load("Basic Prompting.json")).encode())
    assert plain.status_code in (200, 201), plain.text

    started = time.monotonic()
    bomb_ids = [
        client.post("/v1/flows/regex-bomb/runs", json={"input": "a" * 48 + "!"}).json()["id"]
        for _ in range(5)
    ]
    normal = client.post("/v1/flows/plain-prompting/runs", json={"input": "hello"})
    assert normal.status_code == 202, normal.text

    done = wait_for_run(client, normal.json()["id"], timeout=30)
    normal_s = time.monotonic() - started
    assert done["status"] == "succeeded", done
    for run_id in bomb_ids:
        run = wait_for_run(client, run_id, timeout=30)
        assert run["status"] == "succeeded", run
        assert run["output"]["outputs"] == {"ChatOutput-F": "a" * 48 + "!"}  # no match
    # The worker's loop was never pinned: seconds at most on a loaded CI host (the backtracking
    # engine stalled every run on the worker ~30 s with 30 copies; 49 would never finish).
    assert normal_s < 15, normal_s


def test_a_backreference_is_refused_at_upload(client: httpx.Client) -> None:
    """RE2 has no backreferences: a 422 naming the node and field."""
    response = _put(client, "regex-backref", json.dumps(_regex_flow(r"(a+)\1")).encode())
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert (problem["node_id"], problem["field"]) == ("ConditionalRouter-1", "match_text")


class _HealthProbe:
    """Polls /healthz from a thread and records each answer's status and latency."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.answers: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                status = client.get("/healthz").status_code
                self.answers.append((status, time.monotonic() - started))
                time.sleep(0.02)

    def __enter__(self) -> _HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def test_a_20000_node_bare_graph_is_refused_while_healthz_answers(
    stack: Stack, client: httpx.Client
) -> None:
    """Refused by the node limit with 413 in well under the old 32 s; /healthz never waits."""
    nodes = [{"id": f"n{i}", "data": {"type": "TextInput"}} for i in range(20_000)]
    chain_edges = [
        {"source": f"n{i}", "target": f"n{i + 1}", "data": {}} for i in range(0, 19_999, 40)
    ]
    body = json.dumps({"nodes": nodes, "edges": chain_edges}, separators=(",", ":")).encode()
    assert len(body) < 1024 * 1024  # within the body limit: the graph limit must refuse it
    with _HealthProbe(stack.api.url) as probe:
        time.sleep(0.2)
        started = time.monotonic()
        response = _put(client, "graph-bomb", body)
        elapsed = time.monotonic() - started
        time.sleep(0.2)
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert "20000 nodes" in response.json()["detail"]
    assert elapsed < 3.0, elapsed  # ~0.2 s idle; the bound is 1 s, generous for CI
    assert probe.answers
    assert {status for status, _ in probe.answers} == {200}
    assert max(latency for _, latency in probe.answers) < 1.0


def test_deep_json_upload_is_a_413_not_a_500(client: httpx.Client) -> None:
    """50,000 nested arrays: refused by the depth limit before parsing (a RecursionError before)."""
    response = _put(client, "deep-bomb", b"[" * 50_000 + b"]" * 50_000)
    assert response.status_code == 413, response.text
    assert "levels deep" in response.json()["detail"]
