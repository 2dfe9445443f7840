"""Submit options: Idempotency-Key, batches, webhooks (signed, retried, recorded)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from shared.webhooks import verify
from tests.support.stack import WEBHOOK_SECRET, Stack, wait_for_run


def test_concurrent_submits_with_one_idempotency_key_create_exactly_one_run(
    stack: Stack,
) -> None:
    body = {"input": "only once", "metadata": {"n": 1}}

    def submit(_: int) -> httpx.Response:
        with stack.client() as c:
            return c.post("/v1/flows/prompt/runs", json=body, headers={"Idempotency-Key": "k-20"})

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(submit, range(20)))

    assert sorted({r.status_code for r in responses}) in ([200, 202], [202])
    assert [r.status_code for r in responses].count(202) == 1
    assert len({r.json()["id"] for r in responses}) == 1


def test_same_key_with_a_different_body_is_409_idempotency_conflict(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "k-conflict"}
    first = client.post("/v1/flows/prompt/runs", json={"input": "a"}, headers=headers)
    again = client.post("/v1/flows/prompt/runs", json={"input": "a"}, headers=headers)
    other = client.post("/v1/flows/prompt/runs", json={"input": "b"}, headers=headers)
    other_flow = client.post("/v1/flows/chat/runs", json={"input": "a"}, headers=headers)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert other_flow.status_code == 409


def test_batch_creates_one_run_per_input(client: httpx.Client) -> None:
    inputs = [{"input": f"item {i}", "session_id": f"s-batch-{i}"} for i in range(3)]

    response = client.post("/v1/flows/prompt/runs:batch", json={"inputs": inputs})

    assert response.status_code == 202
    ids = response.json()["run_ids"]
    assert len(ids) == 3
    runs = [wait_for_run(client, run_id) for run_id in ids]
    assert [r["input"] for r in runs] == ["item 0", "item 1", "item 2"]
    assert all(r["status"] == "succeeded" for r in runs)
    assert [r["session_id"] for r in runs] == ["s-batch-0", "s-batch-1", "s-batch-2"]


def test_batch_over_the_limit_is_422(client: httpx.Client) -> None:
    response = client.post("/v1/flows/prompt/runs:batch", json={"inputs": [{"input": "x"}] * 101})

    assert response.status_code == 422
    assert "at most 100" in response.json()["detail"]


class Receiver:
    """A webhook endpoint on localhost answering the statuses it is given, in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses[min(len(receiver.received), len(statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    r = Receiver(getattr(request, "param", [200]))
    yield r
    r.server.shutdown()


def _webhook_final(client: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run = client.get(f"/v1/runs/{run_id}").json()
        if (run["webhook"] or {}).get("state") in ("delivered", "failed"):
            return run  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, run
        time.sleep(0.1)


@pytest.mark.parametrize("receiver", [[500, 200]], indirect=True)
def test_webhook_is_signed_retried_after_a_500_and_its_attempts_are_on_the_run(
    client: httpx.Client, receiver: Receiver
) -> None:
    run_id = client.post(
        "/v1/flows/prompt/runs", json={"input": "call me back", "webhook": receiver.url}
    ).json()["id"]

    run = _webhook_final(client, run_id)

    assert run["webhook"]["state"] == "delivered"
    assert [a["status_code"] for a in run["webhook"]["attempts"]] == [500, 200]
    assert len(receiver.received) == 2
    headers, body = receiver.received[-1]
    timestamp, signature = headers["X-Flowfleet-Timestamp"], headers["X-Flowfleet-Signature"]
    assert verify(WEBHOOK_SECRET, timestamp, body, signature)
    assert not verify("wrong-secret", timestamp, body, signature)
    sent = json.loads(body)
    assert sent["id"] == run_id
    assert sent["status"] == "succeeded"
    assert sent["output"] == run["output"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.1/hook", "egress policy"),  # internal addresses (shared/egress.py)
        ("ftp://127.0.0.1/hook", "http or https"),
    ],
)
def test_webhook_to_a_host_not_allowed_is_422(client: httpx.Client, url: str, message: str) -> None:
    response = client.post("/v1/flows/prompt/runs", json={"input": "x", "webhook": url})

    assert response.status_code == 422
    assert message in response.json()["detail"]
