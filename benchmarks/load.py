"""Closed-loop load: N clients, each submitting a run and waiting for its result, in a loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from benchmarks.http import Conn

OneRun = Callable[[Conn, int], Awaitable[dict[str, Any]]]


@dataclass
class LevelResult:
    """What one concurrency level measured."""

    concurrency: int
    duration_s: float
    completed: int = 0
    errors: int = 0
    latencies_s: list[float] = field(default_factory=list)
    server_latencies_s: list[float] = field(default_factory=list)
    stages_s: dict[str, list[float]] = field(default_factory=dict)  # flowfleet's, per stage
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)


class ProcessWatch:
    """CPU seconds and peak RSS of named processes (with their children) over a window."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.start_cpu = {name: self._cpu(p) for name, p in self.procs.items()}
        self.peak = dict.fromkeys(self.procs, 0.0)

    @staticmethod
    def _tree(proc: psutil.Process) -> list[psutil.Process]:
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return [proc]

    def _cpu(self, proc: psutil.Process) -> float:
        # The process itself plus its live children (prefork pools); a short-lived helper child
        # that exits within the window must not make the figure go negative.
        total = 0.0
        for p in self._tree(proc):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def cpu_used(self) -> dict[str, float]:
        return {
            n: round(max(0.0, self._cpu(p) - self.start_cpu[n]), 2) for n, p in self.procs.items()
        }

    def sample(self) -> None:
        for name, proc in self.procs.items():
            rss = 0
            for p in self._tree(proc):
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak[name] = max(self.peak[name], rss / 2**20)


async def closed_loop(
    one_run: OneRun,
    concurrency: int,
    duration_s: float,
    pids: dict[str, int],
    base_url: str,
    drain_s: float = 10.0,
    headers: dict[str, str] | None = None,
    warmup_s: float = 0.0,
) -> LevelResult:
    """Run ``concurrency`` clients; count runs that finish inside the measured window.

    The window opens after ``warmup_s``: a closed loop needs about one latency to reach
    its steady state (no run can finish before it), and first runs pay for compiling
    and connecting. Counting from the first request would under-report throughput by
    the latency over the window, which at 512 clients is most of it.
    """
    result = LevelResult(concurrency=concurrency, duration_s=duration_s)
    start = time.perf_counter()
    window_open = start + warmup_s
    deadline = window_open + duration_s
    watch: ProcessWatch | None = None if warmup_s else ProcessWatch(pids)
    counter = 0

    async def client() -> None:
        conn = Conn(base_url, headers)
        try:
            await one_client(conn)
        finally:
            await conn.close()

    async def one_client(conn: Conn) -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            began = time.perf_counter()
            try:
                answer = await one_run(conn, counter)
                ok = answer.get("status") == "succeeded"
            except Exception as exc:  # every failure counts; the first few are kept to read
                ok, answer = False, {"error": f"{type(exc).__name__}: {exc}"[:200]}
            ended = time.perf_counter()
            if ended > deadline:
                return  # finished after the window: neither counted nor timed
            if ended < window_open:
                continue  # warm-up
            if ok:
                result.completed += 1
                result.latencies_s.append(ended - began)
                if stages := answer.get("stages_s"):
                    # The service alone: from the run's creation to its result.
                    result.server_latencies_s.append(stages["queued"] + stages["running"])
                    for stage, seconds in stages.items():
                        result.stages_s.setdefault(stage, []).append(seconds)
            else:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(str(answer)[:300])

    async def sampler() -> None:
        nonlocal watch
        await asyncio.sleep(max(0.0, window_open - time.perf_counter()))
        watch = watch or ProcessWatch(pids)
        while True:
            watch.sample()
            await asyncio.sleep(0.5)

    sampling = asyncio.create_task(sampler())
    tasks = [asyncio.create_task(client()) for _ in range(concurrency)]
    _, pending = await asyncio.wait(tasks, timeout=warmup_s + duration_s + drain_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    sampling.cancel()
    watch = watch or ProcessWatch(pids)
    watch.sample()
    result.cpu_s = watch.cpu_used()
    result.peak_rss_mb = {k: round(v, 1) for k, v in watch.peak.items()}
    return result


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by nearest rank; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summarise(level: LevelResult, llm_s: float) -> dict[str, Any]:
    """The row the report shows for one level."""
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    overhead = [x - llm_s for x in level.latencies_s]
    server = [x - llm_s for x in level.server_latencies_s]
    # The model's own time is inside "running": the stage's p50 beyond it is its overhead.
    stages = {
        stage: ms(percentile([x - (llm_s if stage == "running" else 0) for x in xs], 50))
        for stage, xs in level.stages_s.items()
    }
    return {
        "concurrency": level.concurrency,
        "completed": level.completed,
        "runs_per_s": round(level.completed / level.duration_s, 1),
        "errors": level.errors,
        "p50_ms": ms(percentile(level.latencies_s, 50)),
        "p95_ms": ms(percentile(level.latencies_s, 95)),
        "p99_ms": ms(percentile(level.latencies_s, 99)),
        "overhead_p50_ms": ms(percentile(overhead, 50)),
        "overhead_p99_ms": ms(percentile(overhead, 99)),
        "server_overhead_p50_ms": ms(percentile(server, 50)),
        "server_overhead_p99_ms": ms(percentile(server, 99)),
        "stage_overhead_p50_ms": stages,
        "cpu_s": level.cpu_s,
        "peak_rss_mb": level.peak_rss_mb,
        "error_samples": level.error_samples,
    }
