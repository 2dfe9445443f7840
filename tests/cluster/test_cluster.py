"""`flowfleet up --api 2 --workers 2 --nginx`: the compose topology as real processes.

nginx (from PATH) in front of two API replicas, two Celery workers, real
PostgreSQL (a fresh database) and Redis (a unique namespace and queue), llm-sim.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.llm_sim import REPO_ROOT, free_port
from tests.support.stack import base_env, fresh_postgres_database, wait_for_run


@dataclass
class Cluster:
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str
    api_urls: list[str]
    worker_metrics: list[str]
    database_url: str

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines of ``up`` and its children whose event is ``name``."""
        found = []
        for line in self.output().splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == name:
                    found.append(record)
        return found


@pytest.fixture(scope="module")
def cluster(infra: dict[str, str], llm_sim: str) -> Iterator[Cluster]:
    """The cluster on a fresh database; stopped (and its process group reaped) afterwards."""
    with ExitStack() as stack:
        if infra["backend"] == "postgresql":
            database_url = stack.enter_context(fresh_postgres_database())
        else:
            database_url = f"sqlite:///{tempfile.mkdtemp()}/cluster.db"
        env = base_env(
            database_url,
            infra["redis_url"],
            llm_sim,
            # Two runs in flight per worker: a burst of runs must spread over both.
            FLOWFLEET_WORKER_CONCURRENCY="2",
            FLOWFLEET_WORKER_METRICS_PORT=str(free_port()),
        )
        nginx_port = free_port()
        log_path = Path(tempfile.mkstemp(prefix="flowfleet-up-", suffix=".log")[1])
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flowfleet",
                    "up",
                    "--api",
                    "2",
                    "--workers",
                    "2",
                    "--nginx",
                    "--nginx-port",
                    str(nginx_port),
                    "--api-port",
                    "0",
                ],  # fmt: skip
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the teardown reaps every child
            )
        stack.callback(_stop_group, proc)
        up = _wait_up(proc, log_path)
        _wait_workers(log_path, proc, count=2)
        yield Cluster(proc, log_path, up["url"], up["api"], up["worker_metrics"], database_url)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything of ours the supervisor left behind
    except ProcessLookupError:
        pass


def _wait_up(proc: subprocess.Popen[bytes], log_path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if '"flowfleet.up"' in line:
                return json.loads(line)  # type: ignore[no-any-return]
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"flowfleet up did not start:\n{log_path.read_text()[-4000:]}")


def _wait_workers(log_path: Path, proc: subprocess.Popen[bytes], count: int) -> None:
    deadline = time.monotonic() + 60
    while log_path.read_text(errors="replace").count('"worker.started"') < count:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"workers did not start:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.1)


def _closed(url: str) -> float:
    """When ``url``'s port stopped accepting connections (after a kill)."""
    port = int(url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return time.monotonic()
        time.sleep(0.005)
    raise AssertionError(f"{url} still accepts connections")


def _worker_of(database_url: str, run_ids: list[str]) -> dict[str, str]:
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    if dsn.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(dsn.split(":///", 1)[1])
        rows = conn.execute(
            f"SELECT id, worker FROM runs WHERE id IN ({','.join('?' * len(run_ids))})", run_ids
        ).fetchall()
        conn.close()
        return dict(rows)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id, worker FROM runs WHERE id = ANY(%s)", [run_ids])
        return {str(r[0]): r[1] for r in rows.fetchall()}


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(
        v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())
    )


def test_runs_through_nginx_are_served_by_both_replicas_and_executed_by_both_workers(
    cluster: Cluster, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"ttft_s": 0.05, "token_s": 0.0, "tokens": 0})
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        responses = [
            client.post("/v1/flows/prompt/runs", json={"input": f"question {i}"}) for i in range(16)
        ]
        assert [r.status_code for r in responses] == [202] * 16
        served_by = {r.headers["x-served-by"] for r in responses}
        runs = [wait_for_run(client, r.json()["id"]) for r in responses]

    assert len(served_by) == 2, served_by
    assert {r["status"] for r in runs} == {"succeeded"}
    workers = _worker_of(cluster.database_url, [r["id"] for r in runs])
    assert len(workers) == 16
    assert len(set(workers.values())) == 2, workers


def test_request_id_is_echoed_and_reaches_the_workers_logs(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        response = client.post(
            "/v1/flows/prompt/runs",
            json={"input": "trace me"},
            headers={"X-Request-ID": "req-cluster-42"},
        )
        generated = client.get("/healthz")
        run = wait_for_run(client, response.json()["id"])

    assert response.headers["x-request-id"] == "req-cluster-42"
    assert len(generated.headers["x-request-id"]) >= 16  # nginx made one up
    assert run["status"] == "succeeded"
    deadline = time.monotonic() + 10
    while not [
        e for e in cluster.events("run.finished") if e.get("request_id") == "req-cluster-42"
    ]:
        assert time.monotonic() < deadline, "the worker's run.finished has no request_id"
        time.sleep(0.1)
    finished = [e for e in cluster.events("run.finished") if e["request_id"] == "req-cluster-42"]
    assert finished[0]["run_id"] == run["id"]
    access = [
        json.loads(line)
        for line in cluster.output().splitlines()
        if line.startswith('{"time"') and "req-cluster-42" in line
    ]
    assert access
    assert access[0]["status"] == 202
    assert access[0]["served_by"]


def test_metrics_are_not_public_through_nginx(cluster: Cluster) -> None:
    assert httpx.get(f"{cluster.url}/metrics").status_code == 403
    assert httpx.get(f"{cluster.api_urls[0]}/metrics").status_code == 200


def test_api_and_worker_metrics_name_the_runs_llm_calls_queue_and_caches(
    cluster: Cluster, sim: httpx.Client
) -> None:
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        ok = [client.post("/v1/flows/prompt/runs", json={"input": f"m{i}"}) for i in range(4)]
        for r in ok:
            assert wait_for_run(client, r.json()["id"])["status"] == "succeeded"
        sim.put("/_sim/config", json={"error_rate": 1.0, "error_status": [500]})
        bad = client.post("/v1/flows/prompt/runs", json={"input": "this one fails"})
        assert wait_for_run(client, bad.json()["id"])["status"] == "failed"

    api = [s for url in cluster.api_urls for s in _samples(httpx.get(f"{url}/metrics").text)]
    route = "/v1/flows/{flow_id}/runs"
    assert _total(api, "flowfleet_http_requests_total", route=route, status="202") >= 5
    assert _total(api, "flowfleet_http_request_duration_seconds_count", route=route) >= 5
    assert _total(api, "flowfleet_runs_submitted_total", flow="prompt") >= 5
    depth = [v for n, _, v in api if n == "flowfleet_queue_depth_messages"]
    assert depth
    assert all(v >= 0 for v in depth)

    worker = [s for url in cluster.worker_metrics for s in _samples(httpx.get(url).text)]
    assert _total(worker, "flowfleet_runs_finished_total", flow="prompt", status="succeeded") >= 4
    assert _total(worker, "flowfleet_runs_finished_total", flow="prompt", status="failed") >= 1
    assert _total(worker, "flowfleet_run_queue_wait_seconds_count", flow="prompt") >= 5
    assert _total(worker, "flowfleet_run_duration_seconds_sum", flow="prompt") > 0
    assert _total(worker, "flowfleet_runs_in_flight") == 0
    assert _total(worker, "flowfleet_llm_request_duration_seconds_count", backend="sim") >= 4
    assert _total(worker, "flowfleet_llm_tokens_total", backend="sim", direction="input") > 0
    assert _total(worker, "flowfleet_llm_tokens_total", backend="sim", direction="output") > 0
    assert _total(worker, "flowfleet_llm_errors_total", backend="sim", kind="http_500") >= 1
    compiles = _total(worker, "flowfleet_flow_cache_requests_total", result="compile")
    hits = _total(worker, "flowfleet_flow_cache_requests_total", result="hit")
    # Once per worker process at most, never per run, even for runs that start together.
    assert 1 <= compiles <= 2
    assert hits >= 3


def test_killing_an_api_replica_fails_no_new_request_and_the_supervisor_restarts_it(
    cluster: Cluster,
) -> None:
    # (started at, status or error) for requests sent one after another through nginx.
    sent: list[tuple[float, int | str]] = []
    stop = threading.Event()

    def submit() -> None:
        with httpx.Client(base_url=cluster.url, timeout=30) as client:
            while not stop.is_set() and len(sent) < 400:
                started = time.monotonic()
                try:
                    r = client.post("/v1/flows/prompt/runs", json={"input": "during a crash"})
                    sent.append((started, r.status_code))
                except httpx.HTTPError as exc:
                    sent.append((started, repr(exc)))
                time.sleep(0.01)

    victim = httpx.get(f"{cluster.api_urls[1]}/healthz").headers["x-served-by"]
    pid = int(victim.rsplit(":", 1)[1])
    thread = threading.Thread(target=submit)
    thread.start()
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    killed_at = _closed(cluster.api_urls[1])  # the kernel has closed its sockets
    time.sleep(1.5)
    stop.set()
    thread.join(timeout=30)

    after = [outcome for started, outcome in sent if started > killed_at]
    before = [outcome for started, outcome in sent if started <= killed_at]
    assert len(after) > 10
    assert set(after) == {202}, after
    # Sent before: the one request the replica was handling when it died may fail (a POST
    # already sent is never replayed: it may have been recorded); nginx answers 503.
    assert len([o for o in before if o != 202]) <= 1, before
    assert set(before) <= {202, 503}, before
    deadline = time.monotonic() + 30
    # The supervisor notices within its next poll; on a loaded machine that can take a while.
    while not [e for e in cluster.events("child.exited") if e["name"] == "api-2"]:
        assert time.monotonic() < deadline, "the supervisor did not log the dead replica"
        time.sleep(0.2)
    while True:  # restarted on the same port, with a new pid
        try:
            now = httpx.get(f"{cluster.api_urls[1]}/healthz", timeout=2).headers["x-served-by"]
            if now != victim:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "api-2 was not restarted"
        time.sleep(0.2)
