"""The designs under test, each started as real processes: flowfleet, direct, naive, lfx;
and the flows they run: Basic Prompting, and an agent with two tools (flowfleet and direct)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.baseline_flow import tweaks
from benchmarks.http import Conn
from shared.settings import Settings
from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.llm_sim import REPO_ROOT, free_port
from tests.support.stack import (
    Proc,
    base_env,
    fresh_postgres_database,
    migrate,
    start_api,
    start_worker,
    wait_http_ok,
)

FLOW_ID = "basic-prompting"
FLOW_FILE = LANGFLOW_FIXTURES / "Basic Prompting.json"
AGENT_FLOW_FILE = Path(__file__).resolve().parent / "flows" / "Benchmark Agent.json"
TERMINAL = {"succeeded", "failed", "cancelled"}
# `make bench` installs lfx into var/lfx-venv when it can (`make lfx`). `pip install lfx`
# alone cannot load the export: its LanguageModelComponent code imports langchain_openai,
# langchain_anthropic and langchain_google_genai, which lfx does not depend on.
LFX = Path(os.environ.get("BENCH_LFX", REPO_ROOT / "var" / "lfx-venv" / "bin" / "lfx"))


def _text(i: int) -> str:
    # Distinct inputs, so no layer can answer from a cache.
    return f"benchmark question number {i} {uuid.uuid4().hex[:6]}"


def _agent_text(i: int) -> str:
    # llm-sim's agent calls the offered tools the user's message names, in the order named,
    # one a model turn, then answers: this input makes three model calls and two tool calls
    # (the arithmetic goes to the calculator; the date tool keeps its default timezone).
    return f"evaluate_expression {i}*3+7, then get_current_date (run {uuid.uuid4().hex[:6]})"


@dataclass(frozen=True)
class BenchFlow:
    """A flow the benchmark runs: its id on flowfleet, its export, and each run's input."""

    name: str
    flow_id: str
    file: Path
    text: Callable[[int], str]


BASIC = BenchFlow("basic", FLOW_ID, FLOW_FILE, _text)
AGENT = BenchFlow("agent", "bench-agent", AGENT_FLOW_FILE, _agent_text)
FLOWS = {f.name: f for f in (BASIC, AGENT)}
# The designs each flow is measured on: the agent against the in-process design a user would
# otherwise write (naive and lfx stay on Basic Prompting).
FLOW_DESIGNS: dict[str, tuple[str, ...]] = {
    "basic": ("flowfleet", "direct", "direct-stock", "naive", "lfx"),
    "agent": ("flowfleet", "direct"),
}


def _python(name: str, args: list[str], env: dict[str, str], port: int | None = None) -> Proc:
    """Start ``python <args>`` with its output in a log file."""
    log_path = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, *args], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return Proc(name, popen, log_path, port)


@dataclass
class Design:
    """A running design: how to do one run through it, and which processes to watch."""

    name: str
    http: httpx.AsyncClient
    procs: dict[str, Proc]
    poll_first_s: float = 0.0
    poll_every_s: float = 0.05
    wait_mode: str = "poll"
    queue: str = ""  # the naive design's Celery queue, purged between levels
    flow: BenchFlow = BASIC
    cleanup: ExitStack = field(default_factory=ExitStack)

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.proc.pid for name, p in self.procs.items()}

    base_url: str = ""
    headers: dict[str, str] | None = None

    async def one_run(self, conn: Conn, i: int) -> dict[str, Any]:
        raise NotImplementedError

    async def close(self) -> None:
        await self.http.aclose()
        for proc in self.procs.values():
            proc.stop()
        self.cleanup.close()


def _client(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=2048, max_keepalive_connections=2048)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120)


class Flowfleet(Design):
    """flowfleet: API → PostgreSQL → Redis queue → worker; clients wait for the result."""

    tweaks: dict[str, dict[str, Any]] | None = None

    async def one_run(self, conn: Conn, i: int) -> dict[str, Any]:
        body: dict[str, Any] = {"input": self.flow.text(i)}
        if self.tweaks:
            body["tweaks"] = self.tweaks
        path = f"/v1/flows/{self.flow.flow_id}/runs"
        sent = time.time()  # the wall clock the service stamps its runs with, on this machine
        if self.wait_mode == "submit-wait":
            status, run = await conn.request("POST", path + "?wait=60", body)
        else:
            status, run = await conn.request("POST", path, body)
        if status not in (200, 202):
            return {"status": "error", "http": status, "body": str(run)[:200]}
        run_id = run["id"]
        if self.wait_mode in ("wait", "submit-wait"):
            while run.get("status") not in TERMINAL:
                _, run = await conn.request("GET", f"/v1/runs/{run_id}/wait?timeout=60")
            return _with_stages(run, sent, time.time())
        await asyncio.sleep(self.poll_first_s)
        while True:
            _, run = await conn.request("GET", f"/v1/runs/{run_id}")
            if run.get("status") in TERMINAL:
                return _with_stages(run, sent, time.time())
            await asyncio.sleep(self.poll_every_s)


def _with_stages(run: dict[str, Any], sent: float, received: float) -> dict[str, Any]:
    """The run with where its time went, from its own timestamps (one machine, one clock).

    ``stages_s``: request sent → run created (HTTP, auth, rate limit), created → started
    (stored, queued, delivered to a worker: the claim stamps started_at as it begins),
    started → finished (the claim's write, the flow and its model call), finished → answer
    received (the result's write, the done event, the reply). Created → finished is what the
    service itself took, without the client's polling delay.
    """
    stamps = [run.get(k) for k in ("created_at", "started_at", "finished_at")]
    if all(stamps):
        created, started, finished = (datetime.fromisoformat(v).timestamp() for v in stamps)
        run["stages_s"] = {
            "in": created - sent,
            "queued": started - created,
            "running": finished - started,
            "out": received - finished,
        }
    return run


class Direct(Design):
    """direct: the chain awaited inside the HTTP request."""

    async def one_run(self, conn: Conn, i: int) -> dict[str, Any]:
        status, answer = await conn.request("POST", "/run", {"input": self.flow.text(i)})
        return answer if status == 200 else {"status": "error", "http": status}  # type: ignore[no-any-return]


class Naive(Design):
    """naive: Celery prefork + result backend, clients polling AsyncResult through the front."""

    async def one_run(self, conn: Conn, i: int) -> dict[str, Any]:
        _, submitted = await conn.request("POST", "/run", {"input": _text(i)})
        await asyncio.sleep(self.poll_first_s)
        while True:
            _, answer = await conn.request("GET", f"/result/{submitted['id']}")
            if answer["status"] != "pending":
                return answer  # type: ignore[no-any-return]
            await asyncio.sleep(self.poll_every_s)


class Lfx(Design):
    """lfx serve: LangFlow's own executor serving the same export."""

    flow_path: str = ""

    async def one_run(self, conn: Conn, i: int) -> dict[str, Any]:
        status, answer = await conn.request("POST", self.flow_path, {"input_value": _text(i)})
        # The run is awaited inside the request; a failed flow is a 500 with success false.
        if status == 200 and isinstance(answer, dict) and answer.get("success"):
            return {"status": "succeeded"}
        return {"status": "error", "http": status, "body": str(answer)[:200]}


# --- starting them ---------------------------------------------------------------------------


def stream_tweaks(flow: BenchFlow = BASIC) -> dict[str, dict[str, Any]]:
    """The tweaks each run sends: the model node's `stream` on in streaming mode (BENCH_STREAM;
    Basic Prompting's Language Model only: the Agent's export has no `stream` field)."""
    return tweaks(flow.file)


def sim_backend_env(sim_url: str) -> dict[str, str]:
    return {"FLOWFLEET_BACKENDS": json.dumps([{"name": "sim", "base_url": f"{sim_url}/v1"}])}


async def start_flowfleet(
    sim_url: str,
    redis_url: str,
    *,
    worker: bool = True,
    extra: dict[str, str] | None = None,
    flow: BenchFlow = BASIC,
) -> Flowfleet:
    """A fresh database, one API process and (unless told otherwise) one worker process."""
    stack = ExitStack()
    database_url = stack.enter_context(fresh_postgres_database())
    env = base_env(
        database_url,
        redis_url,
        sim_url,
        FLOWFLEET_LEASE_S="30",
        FLOWFLEET_SWEEP_INTERVAL_S="10",
        # The test default is small; the benchmark measures the shipped default.
        FLOWFLEET_WORKER_CONCURRENCY=str(Settings.model_fields["worker_concurrency"].default),
        **(extra or {}),
    )
    migrate(env)
    procs = {"api": start_api(env)}
    if worker:
        procs["worker"] = start_worker(env)
    design = Flowfleet("flowfleet", _client(procs["api"].url), procs, cleanup=stack, flow=flow)
    design.tweaks = stream_tweaks(flow)
    design.env = env  # type: ignore[attr-defined]
    r = await design.http.put(f"/v1/flows/{flow.flow_id}", content=flow.file.read_bytes())
    r.raise_for_status()
    design.wait_mode = await _probe_wait(design) if worker else "poll"
    design.base_url = procs["api"].url
    if worker:  # the worker's first runs compile the flow and open its pools: not measured
        await warm_up(design, 16)
    return design


async def _probe_wait(design: Flowfleet) -> str:
    """Use the wait endpoints when this API has them, else poll."""
    path = f"/v1/flows/{design.flow.flow_id}/runs?wait=30"
    r = await design.http.post(path, json={"input": design.flow.text(0)})
    if r.status_code == 200 and r.json().get("status") in TERMINAL:
        return "submit-wait"
    run_id = r.json()["id"]
    w = await design.http.get(f"/v1/runs/{run_id}/wait?timeout=30")
    if w.status_code == 200 and w.json().get("status") in TERMINAL:
        return "wait"
    return "poll"


async def start_direct(sim_url: str, *, stock: bool = False, flow: BenchFlow = BASIC) -> Direct:
    """*direct* (the compiled flow, flowfleet's model client) or *direct-stock* (the
    tutorial chain, ChatOpenAI's default client) in one FastAPI process."""
    if stock and flow is not BASIC:
        raise ValueError("direct-stock is Basic Prompting's tutorial chain only")
    port = free_port()
    env = {**_env(), **sim_backend_env(sim_url), "BENCH_FLOW_FILE": str(flow.file)}
    if stock:
        env["BENCH_DIRECT_CHAIN"] = "stock"
    args = ["-m", "uvicorn", "benchmarks.direct_app:app", "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log"]
    name = "direct-stock" if stock else "direct"
    proc = _python(name, args, env, port)
    wait_http_ok(f"{proc.url}/healthz", proc)
    design = Direct(name, _client(proc.url), {"api": proc}, base_url=proc.url, flow=flow)
    await warm_up(design, 4)
    return design


async def start_naive(sim_url: str, redis_url: str) -> Naive:
    port = free_port()
    queue = f"naive-{uuid.uuid4().hex[:8]}"
    env = {
        **_env(),
        **sim_backend_env(sim_url),
        "BENCH_FLOW_FILE": str(FLOW_FILE),
        "BENCH_REDIS_URL": redis_url,
        "BENCH_QUEUE": queue,
    }
    worker_args = ["-m", "celery", "-A", "benchmarks.naive_app:celery", "worker", "--pool=prefork"]
    worker_args += [f"--concurrency={os.cpu_count() or 1}", f"--queues={queue}"]
    worker_args += ["--loglevel=WARNING", "--without-gossip", "--without-mingle"]
    worker = _python("naive-worker", worker_args, env)
    front_args = ["-m", "uvicorn", "benchmarks.naive_app:api", "--port", str(port)]
    front_args += ["--log-level", "warning", "--no-access-log"]
    front = _python("naive-api", front_args, env, port)
    wait_http_ok(f"{front.url}/healthz", front)
    design = Naive(
        "naive", _client(front.url), {"api": front, "worker": worker}, base_url=front.url
    )
    design.poll_every_s = 0.25
    design.queue = queue
    deadline = time.monotonic() + 60
    conn = Conn(front.url)
    while (await design.one_run(conn, 0))["status"] != "succeeded":  # the prefork children are up
        if time.monotonic() > deadline:
            raise RuntimeError(f"naive worker did not answer:\n{worker.output()[-3000:]}")
    await conn.close()
    return design


async def start_lfx(sim_url: str) -> Lfx | None:
    """``lfx serve`` on the same export, if lfx is installed; None (and why) otherwise."""
    if not LFX.exists():
        print(f"  {LFX} does not exist", flush=True)
        return None
    port = free_port()
    # A copy (lfx only reads it; the model settings come from the env below), with the model
    # node's `stream` on in streaming mode: lfx serve takes no tweaks.
    flow_copy = Path("/tmp") / f"bench-flow-{uuid.uuid4().hex[:6]}.json"
    export = json.loads(FLOW_FILE.read_text())
    for node in export["data"]["nodes"]:
        if node["id"] in stream_tweaks():
            node["data"]["node"]["template"]["stream"]["value"] = True
    flow_copy.write_text(json.dumps(export))
    env = {
        **_env(),
        # The export's api_key field (load_from_db) names OPENAI_API_KEY; lfx reads it from
        # the environment. Its component passes no base URL to ChatOpenAI, so LangChain takes
        # OPENAI_API_BASE (the openai SDK, OPENAI_BASE_URL); llm-sim takes any model name.
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": f"{sim_url}/v1",
        "OPENAI_API_BASE": f"{sim_url}/v1",
        # serve refuses to start without it; clients send it as the x-api-key header.
        "LANGFLOW_API_KEY": "bench",
        "DO_NOT_TRACK": "true",
    }
    log = Path("/tmp") / f"lfx-{port}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [str(LFX), "serve", str(flow_copy), "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd="/tmp",
        )
    proc = Proc("lfx", popen, log, port)
    stack = ExitStack()
    stack.callback(flow_copy.unlink, missing_ok=True)
    try:
        # /health answers once the flows are loaded; a flow that fails to load exits serve.
        wait_http_ok(f"{proc.url}/health", proc, timeout=120)
    except RuntimeError as e:
        print(f"  {e}", flush=True)
        proc.stop()
        stack.close()
        return None
    design = Lfx("lfx", _client(proc.url), {"api": proc}, base_url=proc.url, cleanup=stack)
    design.headers = {"x-api-key": "bench"}
    # GET /flows lists [{"id": the export's top-level id, ...}]; runs are POST /flows/{id}/run.
    flows = (await design.http.get("/flows", headers=design.headers)).json()
    design.flow_path = f"/flows/{flows[0]['id']}/run"
    conn = Conn(design.base_url, design.headers)
    probe = await design.one_run(conn, 0)
    await conn.close()
    if probe["status"] != "succeeded":  # measuring only errors would say nothing
        print(f"  lfx run failed: {probe}", flush=True)
        await design.close()
        return None
    await warm_up(design, 4)
    return design


async def warm_up(design: Design, runs: int) -> None:
    """A few runs before measuring: compiles, pools and caches are filled first."""
    conns = [Conn(design.base_url, design.headers) for _ in range(runs)]
    await asyncio.gather(*(design.one_run(c, i) for i, c in enumerate(conns)))
    for c in conns:
        await c.close()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFLEET_")}
    env.pop("OPENAI_API_KEY", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    return env
