"""A backend's max_concurrency holds across worker processes, as the backend itself sees it."""

from __future__ import annotations

import httpx

from tests.support.stack import wait_for_run
from tests.worker.conftest import FLEET_LIMIT, Fleet


def test_two_workers_never_exceed_the_backends_limit(fleet: Fleet) -> None:
    httpx.delete(f"{fleet.sim_url}/_sim/stats").raise_for_status()
    with httpx.Client(base_url=fleet.api.url, timeout=30) as client:
        ids = [
            client.post("/v1/flows/prompt/runs", json={"input": f"limited {i}"}).json()["id"]
            for i in range(10)
        ]
        runs = [wait_for_run(client, run_id, timeout=60) for run_id in ids]
    stats = httpx.get(f"{fleet.sim_url}/_sim/stats").json()

    assert [r["status"] for r in runs] == ["succeeded"] * 10
    assert stats["completions"] == 10
    assert stats["max_in_flight"] == FLEET_LIMIT
