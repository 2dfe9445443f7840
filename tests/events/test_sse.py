"""GET /v1/runs/{id}/events: live tokens, resume by Last-Event-ID, synthesized ends."""

from __future__ import annotations

import httpx
import redis

from tests.events.conftest import events_key
from tests.support.sse import iter_sse, read_events
from tests.support.stack import Stack, wait_for_run


def _submit(client: httpx.Client, text: str, **extra: object) -> str:
    response = client.post("/v1/flows/prompt/runs", json={"input": text, **extra})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_sse_client_gets_tokens_in_order_then_output_and_done(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"token_s": 0.02, "tokens": 25})
    run_id = _submit(client, "stream me")

    with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        received = []
        for event in iter_sse(response):
            received.append(event)
            if event.event == "done":
                break

    kinds = [e.event for e in received]
    assert kinds[0] == "status"
    assert kinds[-2:] == ["output", "done"]
    tokens = [e.data["text"] for e in received if e.event == "token"]
    # One token per event unless several arrived while the previous event was on its way to
    # Redis (worker/streaming.py): the text is complete and in order either way.
    assert 1 < len(tokens) <= 25
    run = client.get(f"/v1/runs/{run_id}").json()
    assert run["status"] == "succeeded"
    assert "".join(tokens) == run["output"]["text"] == received[-2].data["text"]
    ids = [tuple(int(p) for p in e.id.split("-")) for e in received if e.id]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert received[-1].data == {"status": "succeeded"}


def test_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"token_s": 0.03, "tokens": 30})
    run_id = _submit(client, "resume me")

    first = read_events(client, run_id, stop_after=6)  # then the client drops
    assert first[-1].event == "token"
    rest = read_events(client, run_id, last_event_id=first[-1].id)
    everything = read_events(client, run_id)  # a late subscriber replays the whole stream

    assert [e.id for e in first + rest] == [e.id for e in everything]
    assert rest[-1].event == "done"
    tokens = "".join(e.data["text"] for e in first + rest if e.event == "token")
    assert tokens == client.get(f"/v1/runs/{run_id}").json()["output"]["text"]


def test_finished_run_whose_events_expired_gets_its_outcome_from_the_database(
    client: httpx.Client, stack: Stack, redis_client: redis.Redis
) -> None:
    run_id = _submit(client, "forget my events")
    run = wait_for_run(client, run_id)
    ttl = redis_client.ttl(events_key(stack, run_id))
    assert 0 < ttl <= 3600  # the stream expires after the run
    redis_client.delete(events_key(stack, run_id))

    received = read_events(client, run_id)

    assert [e.event for e in received] == ["status", "output", "done"]
    assert received[0].data == {"status": "succeeded"}
    assert received[1].data == run["output"]
    assert received[2].data == {"status": "succeeded"}


def test_a_failed_runs_live_events_carry_the_error_it_recorded(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"error_rate": 1.0, "error_status": [500]})
    run_id = _submit(client, "fail me")
    run = wait_for_run(client, run_id)

    received = read_events(client, run_id)

    assert [e.event for e in received][-2:] == ["error", "done"]
    assert "output" not in [e.event for e in received]
    assert received[-2].data == run["error"]
    assert received[-1].data == {"status": "failed"}


def test_events_of_unknown_run_are_a_404_problem(client: httpx.Client) -> None:
    response = client.get("/v1/runs/no-such-run/events")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "run_not_found"


def test_wait_returns_the_finished_run(client: httpx.Client, sim: httpx.Client) -> None:
    sim.put("/_sim/config", json={"token_s": 0.01, "tokens": 20})
    run_id = _submit(client, "wait for me")

    response = client.get(f"/v1/runs/{run_id}/wait", params={"timeout": 20})

    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert response.json()["output"]["text"]


def test_submit_with_wait_answers_200_with_the_finished_run(client: httpx.Client) -> None:
    response = client.post("/v1/flows/prompt/runs", params={"wait": 20}, json={"input": "hi"})

    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert response.headers["location"] == f"/v1/runs/{response.json()['id']}"


def test_wait_times_out_with_the_current_run(idle_client: httpx.Client) -> None:
    submitted = idle_client.post("/v1/flows/prompt/runs", params={"wait": 0.5}, json={"input": "x"})
    assert submitted.status_code == 202
    assert submitted.json()["status"] == "queued"

    waited = idle_client.get(f"/v1/runs/{submitted.json()['id']}/wait", params={"timeout": 0.5})

    assert waited.status_code == 200
    assert waited.json()["status"] == "queued"
