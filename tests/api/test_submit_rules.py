"""The submit rules hold at every entry point: submit, batch, retry, the OpenAI front door.

The stacks here have no worker, so everything accepted stays queued and the queue caps are
what refuses; auth is on, so each key is an owner with its own queue share and rate bucket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.test_auth import as_key, make_key
from tests.support.faults import isolated_stack
from tests.support.stack import Stack

SHARE = 3  # FLOWFLEET_MAX_QUEUED_PER_KEY in the `shares` stack
MAX_INPUT = 1000
COUNTS_FRESH_S = 2.0  # the queue gauge's TTL (1 s) with a margin


@pytest.fixture(scope="module")
def shares(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    with isolated_stack(
        llm_sim,
        infra["redis_url"],
        workers=0,
        FLOWFLEET_AUTH_ENABLED="true",
        FLOWFLEET_MAX_QUEUED_PER_KEY=str(SHARE),
        FLOWFLEET_MAX_INPUT_CHARS=str(MAX_INPUT),
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def metered(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    """Rate 1 token/s, burst 20: a run is a token, so a batch spends one per input."""
    with isolated_stack(
        llm_sim,
        infra["redis_url"],
        workers=0,
        FLOWFLEET_AUTH_ENABLED="true",
        FLOWFLEET_RATE_LIMIT_PER_S="1",
        FLOWFLEET_RATE_LIMIT_BURST="20",
    ) as stack:
        yield stack


def _chat(client: httpx.Client, text: str, **extra: Any) -> httpx.Response:
    body = {"model": "prompt", "messages": [{"role": "user", "content": text}], **extra}
    return client.post("/v1/chat/completions", json=body)


def _assert_key_queue_full(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"]
    if "error" in response.json():  # the OpenAI front door answers in OpenAI's shape
        assert response.json()["error"]["code"] == "key_queue_full"
    else:
        assert response.json()["code"] == "key_queue_full"
        assert "FLOWFLEET_MAX_QUEUED_PER_KEY" in response.json()["detail"]


def test_one_key_fills_its_share_at_every_entry_point_and_another_key_still_submits(
    shares: Stack,
) -> None:
    scopes = "runs:write,runs:read"
    with as_key(shares, make_key(shares, scopes, "a")) as a:
        ids = [
            a.post("/v1/flows/prompt/runs", json={"input": f"a{i}"}).json()["id"]
            for i in range(SHARE)
        ]
        _assert_key_queue_full(a.post("/v1/flows/prompt/runs", json={"input": "one more"}))
        _assert_key_queue_full(a.post("/v1/flows/chat/runs", json={"input": "other flow"}))
        _assert_key_queue_full(a.post("/v1/flows/prompt/runs:batch", json={"inputs": [{}]}))
        _assert_key_queue_full(_chat(a, "through the OpenAI door"))

        # A retry is a new run: it counts against the share like any other.
        assert a.post(f"/v1/runs/{ids[0]}/cancel").json()["status"] == "cancelled"
        time.sleep(COUNTS_FRESH_S)  # the replica's queue counts are up to a second old
        retried = a.post(f"/v1/runs/{ids[0]}/retry")
        assert retried.status_code == 202, retried.text  # the cancel freed one place
        assert a.post(f"/v1/runs/{ids[1]}/cancel").json()["status"] == "cancelled"
        time.sleep(COUNTS_FRESH_S)
        assert a.post("/v1/flows/prompt/runs", json={"input": "refill"}).status_code == 202
        _assert_key_queue_full(a.post(f"/v1/runs/{ids[1]}/retry"))

    with as_key(shares, make_key(shares, scopes, "b")) as b:
        accepted = b.post("/v1/flows/prompt/runs", json={"input": "B is not starved"})
        assert accepted.status_code == 202, accepted.text
        batch = b.post("/v1/flows/prompt/runs:batch", json={"inputs": [{"input": "b2"}]})
        assert batch.status_code == 202, batch.text


def test_the_openai_front_door_applies_the_input_limit(shares: Stack) -> None:
    with as_key(shares, make_key(shares, "runs:write,runs:read", "big")) as client:
        too_big = _chat(client, "x" * (MAX_INPUT + 1))
        assert too_big.status_code == 413, too_big.text
        assert too_big.json()["error"]["code"] == "payload_too_large"
        # The same rule, the same answer, as the runs endpoint.
        runs = client.post("/v1/flows/prompt/runs", json={"input": "x" * (MAX_INPUT + 1)})
        assert runs.status_code == 413
        assert runs.json()["code"] == "payload_too_large"


def test_the_batch_endpoint_validates_tweaks_and_names_the_input(shares: Stack) -> None:
    with as_key(shares, make_key(shares, "runs:write,runs:read", "tweaks")) as client:
        flows = {f["id"]: f["kind"] for f in client.get("/v1/flows").json()["items"]}
        assert flows.get("basic-prompting") == "langflow"
        bad = {"NoSuchComponent-1": {"template": "x"}}
        batch = client.post(
            "/v1/flows/basic-prompting/runs:batch",
            json={"inputs": [{"input": "fine"}, {"input": "bad", "tweaks": bad}]},
        )
        assert batch.status_code == 422, batch.text
        assert batch.json()["code"] == "invalid_request"
        assert batch.json()["field"] == "inputs[1].tweaks"
        assert "NoSuchComponent-1" in batch.json()["detail"]
        # Nothing of the batch was taken: the good input did not go in on its own.
        assert client.get("/v1/runs", params={"flow_id": "basic-prompting"}).json()["items"] == []
        single = client.post("/v1/flows/basic-prompting/runs", json={"input": "bad", "tweaks": bad})
        assert single.status_code == 422
        assert single.json()["field"] == "tweaks"


def test_a_batch_spends_one_rate_token_per_run(metered: Stack) -> None:
    with as_key(metered, make_key(metered, "runs:write,runs:read", "batcher")) as client:
        first = client.post(
            "/v1/flows/prompt/runs:batch", json={"inputs": [{"input": f"n{i}"} for i in range(15)]}
        )
        assert first.status_code == 202, first.text
        # 15 of the 20 tokens are gone: 15 more runs are refused, all of them, at once.
        second = client.post(
            "/v1/flows/prompt/runs:batch", json={"inputs": [{"input": f"m{i}"} for i in range(15)]}
        )
        assert second.status_code == 429, second.text
        assert second.json()["code"] == "rate_limited"
        assert int(second.headers["retry-after"]) >= 1
        # A single run still fits in what is left.
        assert client.post("/v1/flows/prompt/runs", json={"input": "one"}).status_code == 202
        queued = client.get("/v1/runs", params={"limit": 100}).json()["items"]
        assert len(queued) == 16  # the refused batch left nothing behind

    with as_key(metered, make_key(metered, "runs:write,runs:read", "other")) as other:
        # Another key's bucket is its own.
        burst = other.post(
            "/v1/flows/prompt/runs:batch", json={"inputs": [{"input": f"o{i}"} for i in range(19)]}
        )
        assert burst.status_code == 202, burst.text
