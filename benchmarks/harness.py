"""`make bench`: flowfleet against direct, naive (and lfx) under closed-loop load on Basic
Prompting, flowfleet against direct on an agent flow (three model calls and two tool calls a
run), plus the submit-only and runs-in-flight modes; writes JSON, a markdown table and a chart
to results/."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from benchmarks import designs, rag, report
from benchmarks.http import Conn
from benchmarks.load import ProcessWatch, closed_loop, summarise
from flowfleet.llm_sim import tool_turn
from tests.support.llm_sim import start_llm_sim, stop_llm_sim
from tests.support.stack import TEST_REDIS, postgres_available, redis_available

RESULTS = Path(__file__).resolve().parent / "results"
SIM = {"ttft_s": 0.2, "token_s": 0.02, "tokens": 40}
LFX_MAX_CLIENTS = 64


def llm_seconds(sim: dict[str, float]) -> float:
    """How long the simulated model takes to stream its whole answer."""
    return sim["ttft_s"] + sim["token_s"] * (sim["tokens"] - 1)


def agent_calls(sim_url: str, sim: dict[str, float]) -> dict[str, Any]:
    """An agent run's model and tool calls, and the simulated model's time over all its calls,
    from the last agent run llm-sim recorded (its final request carries every tool result).

    llm-sim answers a tool call with no tokens, after ``ttft_s - token_s``, and the final
    answer like any reply (ttft, then a token every token_s; words are its tokens).
    """
    for body in reversed(httpx.get(f"{sim_url}/_sim/requests").json()):
        tools = sum(m.get("role") == "tool" for m in body["messages"])
        answer = tool_turn(body)
        if tools and isinstance(answer, str):
            break
    else:
        raise RuntimeError("llm-sim recorded no finished agent run")
    tokens = len(answer.split())
    seconds = tools * max(0.0, sim["ttft_s"] - sim["token_s"]) + sim["ttft_s"]
    seconds += sim["token_s"] * (tokens - 1)
    return {"model_calls": tools + 1, "tool_calls": tools, "llm_s": round(seconds, 3)}


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "round_trip": wake_up_cost(),
    }


def wake_up_cost(redis_url: str = TEST_REDIS, rounds: int = 40) -> dict[str, int]:
    """A Redis PING's round trip (median µs) back to back, and after 50 ms of idle.

    At low load every hop between processes meets an idle CPU: on this machine's virtual
    CPUs a round trip then measured 5-10x longer (an idle vCPU halts, and waking it goes
    through the hypervisor), whatever the work at either end. A run through flowfleet makes
    about a dozen such hops (client, API, PostgreSQL, Redis, worker, model server); *direct*
    makes two, which is most of the difference in overhead at 16 clients.
    """
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    client.ping()  # a connection made before timing

    def ping_us(idle_s: float) -> int:
        times = []
        for _ in range(rounds):
            time.sleep(idle_s)
            began = time.perf_counter()
            client.ping()
            times.append(time.perf_counter() - began)
        return round(statistics.median(times) * 1e6)

    try:
        return {"busy_us": ping_us(0), "idle_us": ping_us(0.05)}
    finally:
        client.close()


def warmup_for(clients: int) -> float:
    """Seconds before a level's window opens: about one latency of a design near 40 runs/s."""
    return 5.0 + clients / 40


async def run_level(
    design: designs.Design, level: int, duration: float, llm_s: float
) -> dict[str, Any]:
    """One design at one concurrency level; the row says when it was measured."""
    measured_at = time.time()
    res = await closed_loop(
        design.one_run,
        level,
        duration,
        design.pids,
        design.base_url,
        headers=design.headers,
        warmup_s=warmup_for(level),
    )
    row = {**summarise(res, llm_s), "measured_at": round(measured_at, 1)}
    print(
        f"  {design.name:>9} c={level:<4} {row['runs_per_s']:>7.1f} runs/s  "
        f"p50 {row['p50_ms']} p99 {row['p99_ms']} ms  overhead p50 {row['overhead_p50_ms']} "
        f"p99 {row['overhead_p99_ms']} (server {row['server_overhead_p50_ms']}/"
        f"{row['server_overhead_p99_ms']}) ms  errors {row['errors']}  cpu {row['cpu_s']}  "
        f"rss {row['peak_rss_mb']}",
        flush=True,
    )
    await asyncio.sleep(1)
    return row


def _purge(design: designs.Design, redis_url: str) -> None:
    # The naive design's leftover tasks from one level would run during the next one.
    if isinstance(design, designs.Naive):
        redis.Redis.from_url(redis_url).delete(design.queue)


async def start_design(
    name: str, sim_url: str, redis_url: str, flow: designs.BenchFlow = designs.BASIC
) -> designs.Design:
    """A design that stays up for every level (lfx gets a process per level instead)."""
    print(f"design {name} ({flow.name} flow)", flush=True)
    if name not in designs.FLOW_DESIGNS[flow.name]:
        raise ValueError(
            f"the {flow.name} flow runs on {', '.join(designs.FLOW_DESIGNS[flow.name])}"
        )
    if name == "flowfleet":
        design = await designs.start_flowfleet(sim_url, redis_url, flow=flow)
        print(f"  wait mode: {design.wait_mode}")
        return design
    if name in ("direct", "direct-stock"):
        return await designs.start_direct(sim_url, stock=name == "direct-stock", flow=flow)
    if name == "naive":
        return await designs.start_naive(sim_url, redis_url)
    raise ValueError(f"unknown design {name!r}")


async def compare(
    sim_url: str,
    redis_url: str,
    levels: list[int],
    duration: float,
    names: list[str],
    flow: designs.BenchFlow = designs.BASIC,
) -> dict[str, Any]:
    """Every design at one concurrency level before any moves on to the next, against the
    same llm-sim.

    Level by level, not design by design: this machine's speed drifts over minutes (the same
    code measured 170 and 120 runs/s at 256 clients twenty minutes apart, and the designs
    did not drift together), so a level's ratios compare designs measured minutes apart, not
    a quarter of an hour. The designs stay up between their levels; an idle one costs nothing.
    """
    llm_s = llm_seconds(SIM)
    httpx.put(f"{sim_url}/_sim/config", json=SIM).raise_for_status()
    out: dict[str, Any] = {"levels": levels, "duration_s": duration, "llm_s": llm_s, "designs": {}}
    out["flow"] = flow.name
    up: dict[str, designs.Design] = {}
    try:
        for name in names:
            out["designs"][name] = {"rows": []}
            if name == "lfx":
                continue  # a fresh process per level, below
            began = time.monotonic()
            up[name] = design = await start_design(name, sim_url, redis_url, flow)
            out["designs"][name]["startup_s"] = round(time.monotonic() - began, 1)
            if isinstance(design, designs.Flowfleet):
                out["designs"][name]["wait_mode"] = design.wait_mode
            _purge(design, redis_url)
        if flow is designs.AGENT:  # the designs' warm-up runs were agent runs
            calls = agent_calls(sim_url, SIM)
            print(f"  an agent run: {calls}", flush=True)
            out.update(calls)
            llm_s = out["llm_s"]
        for level in levels:
            print(f"level {level}", flush=True)
            for name in names:
                if name in up:
                    row = await run_level(up[name], level, duration, llm_s)
                    _purge(up[name], redis_url)
                else:
                    row = await _lfx_level(out["designs"][name], level, sim_url, duration, llm_s)
                if row is not None:
                    out["designs"][name]["rows"].append(row)
    finally:
        for design in up.values():
            await design.close()
    return out


async def _lfx_level(
    entry: dict[str, Any], level: int, sim_url: str, duration: float, llm_s: float
) -> dict[str, Any] | None:
    # lfx serve runs one flow at a time per process (a semaphore of 1 in its serve app): a
    # level's backlog of waiting requests would spill into the next level, so each level gets
    # a fresh process, and levels above LFX_MAX_CLIENTS (minutes of backlog at ~1 run/s) are
    # left out.
    if level > LFX_MAX_CLIENTS or "skipped" in entry:
        return None
    design = await designs.start_lfx(sim_url)
    if design is None:
        print("  lfx is not installed or did not start; skipped")
        entry["skipped"] = "lfx not installed or did not start"
        return None
    try:
        return await run_level(design, level, duration, llm_s)
    finally:
        await design.close()


async def submit_only(sim_url: str, redis_url: str, duration: float, concurrency: int) -> dict:
    """Accepted runs/s from one API process on PostgreSQL: API → database → Redis, no worker."""
    design = await designs.start_flowfleet(sim_url, redis_url, worker=False)

    async def submit(conn: Conn, i: int) -> dict[str, Any]:
        path = f"/v1/flows/{designs.FLOW_ID}/runs"
        status, _ = await conn.request("POST", path, {"input": designs._text(i)})
        return {"status": "succeeded" if status == 202 else f"http {status}"}

    try:
        res = await closed_loop(submit, concurrency, duration, design.pids, design.base_url)
    finally:
        await design.close()
    row = summarise(res, 0.0)
    result = {
        "concurrency": concurrency,
        "accepted_per_s": row["runs_per_s"],
        "p50_ms": row["p50_ms"],
        "p99_ms": row["p99_ms"],
        "errors": row["errors"],
        "api_cpu_s": row["cpu_s"]["api"],
        "duration_s": duration,
    }
    print(f"submit only: {result}", flush=True)
    return result


async def in_flight(sim_url: str, redis_url: str, runs: int, call_s: float) -> dict[str, Any]:
    """How many runs one worker process keeps in flight, with a slow model, and at what RSS."""
    tokens = 40
    sim = {"ttft_s": 0.2, "token_s": (call_s - 0.2) / (tokens - 1), "tokens": tokens}
    httpx.put(f"{sim_url}/_sim/config", json=sim).raise_for_status()
    design = await designs.start_flowfleet(sim_url, redis_url)
    httpx.delete(f"{sim_url}/_sim/stats").raise_for_status()  # after the warm-up runs
    watch = ProcessWatch({"worker": design.pids["worker"]})
    started = time.perf_counter()
    try:
        sem = asyncio.Semaphore(64)

        async def submit(i: int) -> str:
            async with sem:
                for attempt in range(3):  # a keep-alive connection the server just closed
                    try:
                        r = await design.http.post(
                            f"/v1/flows/{designs.FLOW_ID}/runs", json={"input": designs._text(i)}
                        )
                        return str(r.json()["id"])
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                raise AssertionError("unreachable")

        ids = await asyncio.gather(*(submit(i) for i in range(runs)))
        submitted_s = time.perf_counter() - started
        peak = 0
        deadline = time.perf_counter() + call_s * 4 + 60
        done = 0
        while time.perf_counter() < deadline:
            watch.sample()
            stats = httpx.get(f"{sim_url}/_sim/stats").json()
            peak = max(peak, stats["max_in_flight"])
            if stats["completions"] >= runs and stats["in_flight"] == 0:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1)
        for run_id in ids:
            run = (await design.http.get(f"/v1/runs/{run_id}")).json()
            done += run["status"] == "succeeded"
        worker_cpu_s = watch.cpu_used()["worker"]  # while the worker is still there to ask
    finally:
        await design.close()
        httpx.put(f"{sim_url}/_sim/config", json=SIM).raise_for_status()
    result = {
        "runs": runs,
        "llm_call_s": call_s,
        "submitted_in_s": round(submitted_s, 1),
        "peak_in_flight": peak,
        "succeeded": done,
        "all_done_in_s": round(time.perf_counter() - started, 1),
        "worker_peak_rss_mb": round(watch.peak["worker"], 1),
        "worker_cpu_s": worker_cpu_s,
    }
    print(f"in flight: {result}", flush=True)
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if not postgres_available() or not redis_available():
        sys.exit("the benchmark needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379")
    redis_url = TEST_REDIS
    sim_url, sim_proc = start_llm_sim(**SIM)
    results: dict[str, Any] = {"machine": machine(), "sim": SIM, "stream": args.stream}
    try:
        if args.mode in ("all", "compare") and "basic" in args.flows:
            results["compare"] = await compare(
                sim_url, redis_url, args.levels, args.duration, args.designs
            )
        if args.mode in ("all", "compare") and "agent" in args.flows:
            results["agent"] = await compare(
                sim_url,
                redis_url,
                args.agent_levels,
                args.duration,
                args.agent_designs,
                designs.AGENT,
            )
        if args.mode in ("all", "compare") and "rag" in args.flows:
            results["rag"] = await rag.rag_line(
                sim_url,
                redis_url,
                docs=args.rag_docs,
                chunks=args.rag_chunks,
                clients=args.rag_clients,
                duration=args.rag_duration,
                run_level=run_level,
                sim=SIM,
                llm_s=llm_seconds(SIM),
            )
        if args.mode in ("all", "submit"):
            results["submit"] = await submit_only(
                sim_url, redis_url, args.submit_duration, args.submit_concurrency
            )
        if args.mode in ("all", "inflight"):
            results["inflight"] = await in_flight(
                sim_url, redis_url, args.inflight_runs, args.inflight_call_s
            )
    finally:
        stop_llm_sim(sim_proc)
    results["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    return results


def _names(allowed: Any) -> Any:
    """An argparse type: a comma-separated list of names, each one of ``allowed``."""

    def names(text: str) -> list[str]:
        out = [n for n in text.split(",") if n]
        if unknown := [n for n in out if n not in allowed]:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}"
            )
        return out

    return names


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--mode", choices=["all", "compare", "submit", "inflight"], default="all")
    p.add_argument(
        "--levels", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64, 256, 512]
    )
    p.add_argument("--duration", type=float, default=15.0, help="seconds per level")
    p.add_argument(
        "--flows",
        type=_names([*designs.FLOWS, "rag"]),
        default=["basic", "agent"],
        help="the flows compared: basic (Basic Prompting), agent (three model calls and "
        "two tool calls a run) and rag (Vector Store RAG: ingest, retrieval beside Basic "
        "Prompting, the search itself; benchmarks/rag.py)",
    )
    p.add_argument("--rag-docs", type=int, default=rag.DOCS, help="documents ingested")
    p.add_argument(
        "--rag-chunks",
        type=int,
        default=rag.TARGET_CHUNKS,
        help="chunks in the searched collection",
    )
    p.add_argument("--rag-clients", type=int, default=64, help="clients for the retrieval runs")
    p.add_argument("--rag-duration", type=float, default=15.0, help="seconds of retrieval runs")
    p.add_argument(
        "--agent-levels",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[64, 256],
        help="client counts for the agent flow",
    )
    p.add_argument(
        "--agent-designs",
        type=_names(designs.FLOW_DESIGNS["agent"]),
        default=list(designs.FLOW_DESIGNS["agent"]),
        help="designs for the agent flow (flowfleet, direct)",
    )
    p.add_argument(
        "--designs",
        type=lambda s: s.split(","),
        default=["flowfleet", "direct", "direct-stock", "naive", "lfx"],
    )
    p.add_argument("--submit-duration", type=float, default=10.0)
    p.add_argument("--submit-concurrency", type=int, default=64)
    p.add_argument("--inflight-runs", type=int, default=600)
    p.add_argument("--inflight-call-s", type=float, default=10.0)
    p.add_argument(
        "--stream",
        action="store_true",
        help="the model streams its tokens (the export's `stream` turned on in every design)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if args.stream:  # read by the designs' processes (benchmarks.baseline_flow.streaming)
        os.environ["BENCH_STREAM"] = "1"
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2))
    text = report.markdown(results)
    (args.out / "bench.md").write_text(text)
    if "compare" in results:
        report.chart(results, args.out / "bench.png")
    print(text)
    return results
