"""Latency of run events, end to end through real processes.

(a) token latency: from llm-sim sending a token (its wall clock, GET /_sim/streams)
    to an SSE client of GET /v1/runs/{id}/events receiving it;
(b) wait latency: from the run finishing (its finished_at) to a client blocked in
    GET /v1/runs/{id}/wait receiving the answer.

Starts llm-sim, a fresh PostgreSQL database (or SQLite), Redis, one API and one
worker like the test suite does. All on one machine, so the wall clocks agree.

    PYTHONPATH=. python -m benchmarks.latency_events [--runs 20] [--tokens 50] [--token-s 0.02]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.llm_sim import start_llm_sim, stop_llm_sim  # noqa: E402
from tests.support.sse import iter_sse  # noqa: E402
from tests.support.stack import (  # noqa: E402
    base_env,
    fresh_postgres_database,
    migrate,
    postgres_available,
    redis_available,
    start_api,
    start_embedded_redis,
    start_worker,
)


def in_waves(task: Callable[[int], None], runs: int, concurrency: int) -> None:
    """``task(i)`` for every run, ``concurrency`` threads at a time."""
    for start in range(0, runs, concurrency):
        threads = [
            threading.Thread(target=task, args=(i,))
            for i in range(start, min(runs, start + concurrency))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(name: str, values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (
        f"{name}: n={len(ms)} p50={pct(ms, 50):.1f} ms p99={pct(ms, 99):.1f} ms "
        f"mean={statistics.fmean(ms):.1f} ms max={max(ms):.1f} ms"
    )


def token_latencies(
    api: httpx.Client, sim: httpx.Client, runs: int, concurrency: int
) -> tuple[list[float], list[float]]:
    """(sim sent → SSE client got, worker published → SSE client got) for every token."""
    received: dict[str, list[tuple[float, float]]] = {}

    def follow(i: int) -> None:
        text = f"bench token {i} {time.time()}"
        run_id = api.post("/v1/flows/prompt/runs", json={"input": text}).json()["id"]
        got: list[tuple[float, float]] = []
        with api.stream("GET", f"/v1/runs/{run_id}/events") as response:
            for event in iter_sse(response):
                if event.event == "token":
                    got.append((event.received, float(event.data["ts"])))
                if event.event == "done":
                    break
        received[text] = got

    in_waves(follow, runs, concurrency)
    sent = {s["user"]: s["emitted"] for s in sim.get("/_sim/streams").json()}
    from_sim, from_worker = [], []
    coalesced = 0
    for text, got in received.items():
        emitted = sent[text]
        if len(emitted) != len(got):
            # Some event carried several tokens (they arrived while the previous one was on
            # its way to Redis): its tokens cannot be matched one to one, so it is left out.
            coalesced += 1
            continue
        for (recv, published), sent_at in zip(got, emitted, strict=True):
            from_sim.append(recv - sent_at)
            from_worker.append(recv - published)
    if coalesced:
        print(f"    ({coalesced} of {len(received)} runs had coalesced token events: left out)")
    return from_sim, from_worker


def wait_latencies(
    api: httpx.Client, events: redis.Redis, namespace: str, runs: int, concurrency: int
) -> tuple[list[float], list[float]]:
    """(run finished_at, done event appended) → the blocked /wait client has its answer."""
    out: list[float] = []
    from_done: list[float] = []

    def one(i: int) -> None:
        run_id = api.post("/v1/flows/prompt/runs", json={"input": f"bench wait {i}"}).json()["id"]
        answer = api.get(f"/v1/runs/{run_id}/wait", params={"timeout": 30})
        answered = time.time()
        run = answer.json()
        assert run["status"] == "succeeded", run
        out.append(answered - datetime.fromisoformat(run["finished_at"]).timestamp())
        # A stream entry id starts with Redis' clock in ms: when done was appended.
        done_id = events.xrevrange(f"{namespace}run:{run_id}:events", count=1)[0][0]
        from_done.append(answered - int(done_id.split(b"-")[0]) / 1000)

    in_waves(one, runs, concurrency)
    return out, from_done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--token-s", type=float, default=0.02)
    args = parser.parse_args()
    with ExitStack() as stack:
        sim_url, sim_proc = start_llm_sim()
        stack.callback(stop_llm_sim, sim_proc)
        if postgres_available():
            database_url = stack.enter_context(fresh_postgres_database())
        else:
            database_url = "sqlite:////tmp/flowfleet-bench-events.db"
        redis_url = "redis://127.0.0.1:6379/0"
        if not redis_available(redis_url):
            redis_url, redis_proc = start_embedded_redis()
            stack.callback(redis_proc.terminate)
        env = base_env(database_url, redis_url, sim_url)
        migrate(env)
        api_proc = start_api(env)
        stack.callback(api_proc.stop)
        worker = start_worker(env)
        stack.callback(worker.stop)
        api = stack.enter_context(httpx.Client(base_url=api_proc.url, timeout=60))
        sim = stack.enter_context(httpx.Client(base_url=sim_url, timeout=10))
        config = {"ttft_s": 0.2, "token_s": args.token_s, "tokens": args.tokens}
        sim.put("/_sim/config", json=config).raise_for_status()
        api.post("/v1/flows/prompt/runs", params={"wait": 30}, json={"input": "warm up"})
        sim.delete("/_sim/requests")

        from_sim, from_worker = token_latencies(api, sim, args.runs, args.concurrency)
        events = stack.enter_context(redis.Redis.from_url(redis_url))
        namespace = env["FLOWFLEET_REDIS_NAMESPACE"]
        waits, from_done = wait_latencies(api, events, namespace, args.runs, args.concurrency)
        print(
            f"setup: {args.runs} runs, {args.concurrency} at a time, {args.tokens} tokens "
            f"every {args.token_s * 1000:.0f} ms, database={database_url.split(':')[0]}"
        )
        print(summary("(a) token: llm-sim sent -> SSE client received", from_sim))
        print(summary("    token: worker published -> SSE client received", from_worker))
        print(summary("(b) wait: run finished_at -> /wait client answered", waits))
        print(summary("    wait: done event appended -> /wait client answered", from_done))


if __name__ == "__main__":
    main()
