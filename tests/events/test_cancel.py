"""POST /v1/runs/{id}/cancel: queued runs at once, running ones at the next token."""

from __future__ import annotations

import time

import httpx

from shared.queue import RUN_TASK, make_celery
from shared.settings import Settings
from tests.support.sse import iter_sse, read_events
from tests.support.stack import Stack, wait_for_run


def test_cancel_mid_stream_stops_the_run_and_adds_nothing_to_its_session(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"token_s": 0.1, "tokens": 60})
    run_id = client.post(
        "/v1/flows/chat/runs", json={"input": "talk a lot", "session_id": "s-cancel"}
    ).json()["id"]

    tokens_before = tokens_after = 0
    with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
        events = iter_sse(response)
        for event in events:
            tokens_before += event.event == "token"
            if tokens_before == 3:
                break
        cancelled_at = time.monotonic()
        answer = client.post(f"/v1/runs/{run_id}/cancel")
        assert answer.status_code == 202
        assert answer.json()["status"] == "running"
        for event in events:
            tokens_after += event.event == "token"
            if event.event == "done":
                done = event
                break
    stopped_in = time.monotonic() - cancelled_at

    assert done.data == {"status": "cancelled"}
    run = client.get(f"/v1/runs/{run_id}").json()
    assert run["status"] == "cancelled"
    assert run["output"] is None
    assert run["finished_at"]
    # It stopped long before its 60 tokens; the cancel took effect at the next token.
    assert tokens_before + tokens_after < 30, (tokens_after, stopped_in)
    assert client.get("/v1/sessions/s-cancel/messages").json()["messages"] == []


def test_cancel_queued_run_is_immediate_and_the_worker_skips_it(
    idle_client: httpx.Client, client: httpx.Client, stack: Stack
) -> None:
    run_id = idle_client.post("/v1/flows/prompt/runs", json={"input": "never run"}).json()["id"]

    answer = idle_client.post(f"/v1/runs/{run_id}/cancel")

    assert answer.status_code == 200
    assert answer.json()["status"] == "cancelled"
    assert [e.event for e in read_events(client, run_id)][-1] == "done"
    # Deliver its message to the real worker now: the claim must refuse a cancelled run.
    celery = make_celery(
        Settings(
            redis_url=stack.env["FLOWFLEET_REDIS_URL"],
            queue_name=stack.env["FLOWFLEET_QUEUE_NAME"],
        )
    )
    celery.send_task(RUN_TASK, args=[run_id])
    deadline = time.monotonic() + 20
    worker = stack.workers[0]
    while f'"run_id": "{run_id}"' not in worker.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "run.skipped" in [line for line in worker.output().splitlines() if run_id in line][0]
    assert client.get(f"/v1/runs/{run_id}").json()["status"] == "cancelled"


def test_cancel_finished_run_is_409_run_finished(client: httpx.Client) -> None:
    run_id = client.post("/v1/flows/prompt/runs", json={"input": "done"}).json()["id"]
    wait_for_run(client, run_id)

    answer = client.post(f"/v1/runs/{run_id}/cancel")

    assert answer.status_code == 409
    assert answer.json()["code"] == "run_finished"
    assert client.get(f"/v1/runs/{run_id}").json()["status"] == "succeeded"


def test_cancel_unknown_run_is_404(client: httpx.Client) -> None:
    assert client.post("/v1/runs/nope/cancel").json()["code"] == "run_not_found"
