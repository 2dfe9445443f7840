"""`flowfleet up` plans its ports before it starts anything; workers default to one per core."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flowfleet.up import plan_ports, port_free, worker_processes
from shared.settings import Settings
from tests.support.llm_sim import REPO_ROOT, free_port
from tests.support.stack import base_env, migrate


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_replicas_take_consecutive_ports_and_llm_sim_moves_out_of_their_way() -> None:
    base = free_port()
    plan = plan_ports(
        api_base=base,
        api_replicas=3,
        nginx_port=None,
        sim_wanted=base + 1,  # as 8001 is for replicas on 8000, 8001, 8002
        metrics_base=base + 2,
        workers=2,
    )
    assert plan.api == [base, base + 1, base + 2]
    assert plan.llm_sim not in plan.api
    # Metrics ports start at the setting but skip every port the plan gave out.
    assert set(plan.worker_metrics).isdisjoint({*plan.api, plan.llm_sim})
    assert len(set(plan.worker_metrics)) == 2
    assert min(plan.worker_metrics) > base + 2


def test_llm_sim_keeps_its_port_when_nothing_else_wants_it() -> None:
    base, sim = free_port(), free_port()
    plan = plan_ports(
        api_base=base, api_replicas=1, nginx_port=None, sim_wanted=sim, metrics_base=0, workers=1
    )
    assert plan.llm_sim == sim
    assert plan.worker_metrics == []


def test_a_held_replica_or_nginx_port_is_an_error_naming_it(held_port: int) -> None:
    with pytest.raises(SystemExit, match=rf"port {held_port} \(API replica 2\) is in use"):
        plan_ports(
            api_base=held_port - 1,
            api_replicas=2,
            nginx_port=None,
            sim_wanted=None,
            metrics_base=0,
            workers=1,
        )
    with pytest.raises(SystemExit, match=rf"port {held_port} \(nginx\) is in use"):
        plan_ports(
            api_base=0,
            api_replicas=1,
            nginx_port=held_port,
            sim_wanted=None,
            metrics_base=0,
            workers=1,
        )
    assert not port_free(held_port)


def test_nginx_on_a_replicas_port_is_refused() -> None:
    base = free_port()
    with pytest.raises(SystemExit, match=rf"API replica 1 and nginx both ask for port {base}"):
        plan_ports(
            api_base=base, api_replicas=1, nginx_port=base, sim_wanted=None, metrics_base=0,
            workers=1,
        )  # fmt: skip


def test_workers_default_to_one_per_core_unless_set() -> None:
    cores = len(os.sched_getaffinity(0))
    assert worker_processes(None, Settings(_env_file=None)) == cores  # type: ignore[call-arg]
    assert worker_processes(None, Settings(_env_file=None, worker_processes=3)) == 3  # type: ignore[call-arg]
    assert worker_processes(2, Settings(_env_file=None, worker_processes=3)) == 2  # type: ignore[call-arg]


def test_worker_processes_runs_that_many_celery_workers_each_with_its_metrics(
    infra: dict[str, str], llm_sim: str, tmp_path: Path
) -> None:
    metrics = free_port()
    env = base_env(
        infra["database_url"],
        infra["redis_url"],
        llm_sim,
        FLOWFLEET_WORKER_PROCESSES="2",
        FLOWFLEET_WORKER_METRICS_PORT=str(metrics),
    )
    migrate(env)
    log_path = tmp_path / "workers.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flowfleet", "worker", "--processes", "0"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while log_path.read_text().count('"worker.started"') < 2:
            assert proc.poll() is None, log_path.read_text()[-4000:]
            assert time.monotonic() < deadline, log_path.read_text()[-4000:]
            time.sleep(0.2)
        ids = set(re.findall(r'"worker_id": ?"([^"]+)"', log_path.read_text()))
        assert len(ids) == 2
        for port in (metrics, metrics + 1):
            assert "flowfleet_" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0
