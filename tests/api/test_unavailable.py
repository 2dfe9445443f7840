"""Redis or the database unreachable at submit: 503 backend_unavailable, nothing half-written."""

from __future__ import annotations

import time

import httpx

from tests.support.llm_sim import free_port
from tests.support.stack import Stack, start_api


def test_redis_down_at_submit_is_503_and_leaves_no_run(stack: Stack, client: httpx.Client) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    api = start_api({**stack.env, "FLOWFLEET_REDIS_URL": dead_redis})
    try:
        with httpx.Client(base_url=api.url, timeout=30) as broken:
            started = time.monotonic()
            response = broken.post(
                "/v1/flows/prompt/runs", json={"input": "x", "session_id": "s-redis-down"}
            )
            elapsed = time.monotonic() - started
            ready = broken.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "backend_unavailable"
        assert response.headers["retry-after"]
        assert elapsed < 10  # answered, not hung
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"].startswith("unavailable")
        # The row written before the failed enqueue was removed: the client was told "not taken".
        runs = client.get("/v1/runs", params={"session_id": "s-redis-down"}).json()["items"]
        assert runs == []
    finally:
        api.stop()


def test_database_down_at_submit_is_503(stack: Stack) -> None:
    dead_db = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    api = start_api({**stack.env, "FLOWFLEET_DATABASE_URL": dead_db})
    try:
        with httpx.Client(base_url=api.url, timeout=30) as broken:
            response = broken.post("/v1/flows/prompt/runs", json={"input": "x"})
            listing = broken.get("/v1/runs")
            ready = broken.get("/readyz")
        for answer in (response, listing):
            assert answer.status_code == 503
            assert answer.json()["code"] == "backend_unavailable"
            assert "Traceback" not in answer.text
        assert ready.json()["checks"]["database"].startswith("unavailable")
    finally:
        api.stop()
