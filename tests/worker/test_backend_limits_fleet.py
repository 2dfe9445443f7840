"""A backend's max_concurrency holds across worker processes, as the backend itself sees it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.llm_sim import REPO_ROOT, start_llm_sim, stop_llm_sim
from tests.support.stack import Proc, base_env, start_api, start_worker, wait_for_run


@pytest.fixture
def limited_fleet(infra: dict[str, str]) -> Iterator[tuple[str, Proc]]:
    """llm-sim answering in 0.3 s, a backend limited to 2, one API and two workers."""
    sim_url, sim = start_llm_sim(ttft_s=0.3)
    backends = [{"name": "sim", "base_url": f"{sim_url}/v1", "max_concurrency": 2}]
    env = base_env(
        infra["database_url"], infra["redis_url"], sim_url, FLOWFLEET_BACKENDS=json.dumps(backends)
    )
    subprocess.run(
        [sys.executable, "-m", "flowfleet", "migrate"], env=env, cwd=REPO_ROOT, check=True
    )
    procs = [start_api(env), start_worker(env, "worker-a"), start_worker(env, "worker-b")]
    try:
        yield sim_url, procs[0]
    finally:
        for proc in procs:
            proc.stop()
        stop_llm_sim(sim)


def test_two_workers_never_exceed_the_backends_limit(limited_fleet: tuple[str, Proc]) -> None:
    sim_url, api = limited_fleet
    with httpx.Client(base_url=api.url, timeout=30) as client:
        ids = [
            client.post("/v1/flows/prompt/runs", json={"input": f"question {i}"}).json()["id"]
            for i in range(10)
        ]
        runs = [wait_for_run(client, run_id, timeout=60) for run_id in ids]
    stats = httpx.get(f"{sim_url}/_sim/stats").json()

    assert [r["status"] for r in runs] == ["succeeded"] * 10
    assert stats["completions"] == 10
    assert stats["max_in_flight"] == 2
