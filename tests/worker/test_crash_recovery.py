"""kill -9 of a worker mid-run, then a new worker: the run ends succeeded exactly once."""

from __future__ import annotations

import signal
import time

import httpx

from tests.support.stack import Stack, start_api, start_worker, wait_for_run


def test_worker_killed_mid_run_is_recovered_exactly_once(
    stack: Stack, client: httpx.Client, sim: httpx.Client
) -> None:
    # A queue of its own, so the session's shared worker cannot pick the run up instead.
    env = {**stack.env, "FLOWFLEET_QUEUE_NAME": stack.env["FLOWFLEET_QUEUE_NAME"] + "-crash"}
    api = start_api(env)
    doomed = start_worker(env, name="doomed-worker")
    successor = None
    try:
        sim.put("/_sim/config", json={"ttft_s": 5.0})
        with httpx.Client(base_url=api.url, timeout=30) as crash_client:
            run = crash_client.post(
                "/v1/flows/chat/runs", json={"input": "survive this", "session_id": "s-crash"}
            ).json()
            running = wait_for_run(crash_client, run["id"], until={"running"})
            assert running["attempts"] == 1
            deadline = time.monotonic() + 10
            while not sim.get("/_sim/requests").json():  # wait until the LLM call is in flight
                assert time.monotonic() < deadline, "the worker never called the backend"
                time.sleep(0.05)

            doomed.kill(signal.SIGKILL)
            sim.put("/_sim/config", json={"ttft_s": 0.2})
            successor = start_worker(env, name="successor-worker")

            done = wait_for_run(crash_client, run["id"], timeout=45)
            time.sleep(1.5)  # let any duplicate delivery show itself
            final = crash_client.get(f"/v1/runs/{run['id']}").json()
            messages = crash_client.get("/v1/sessions/s-crash/messages").json()["messages"]

        assert done["status"] == "succeeded"
        assert final["attempts"] == 2  # claimed by the killed worker, then by the successor
        assert final["finished_at"] == done["finished_at"]  # written once, never rewritten
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["content"] == done["output"]["text"]
    finally:
        for proc in (doomed, successor, api):
            if proc is not None:
                proc.stop()
