"""`make bench-scale` (issue 17): what submit, poll, list, history and retention cost when
PostgreSQL holds 5,000,000 runs and 10,000,000 session messages, against the same on a
small database.

Both databases get their own API process and worker (with llm-sim), and each line sends
its requests one at a time on a keep-alive connection to each, the two taking turns request
by request, after a warm-up: this machine is shared and its speed drifts over minutes, and
turns keep that drift out of the ratios. The *small* database is not bare: it holds what
the operations read (the 10,000-turn session, a page or more for each list filter:
``--small-runs`` runs in all), so each ratio says what the other 4,980,000 runs and
9,960,000 messages cost, not what reading more rows costs. The rows are made by
``benchmarks.scale_load`` in databases of their own (``--database`` and
``<database>_small``, dropped and made again), migrated with the project's migrations.

The retention line calls ``worker.retention.purge_expired`` when that module exists: each
call is given a cutoff that makes exactly the ``--purge-runs`` oldest runs (and their
messages) expired, so both columns time the deletion of the same number of rows.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from benchmarks.designs import FLOW_FILE
from benchmarks.harness import machine
from benchmarks.http import Conn
from benchmarks.scale_load import DEAD_LETTER, LONG_SESSION, Shape, load, run_id
from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.llm_sim import start_llm_sim, stop_llm_sim
from tests.support.stack import (
    ADMIN_DSN,
    TEST_REDIS,
    Proc,
    base_env,
    migrate,
    postgres_available,
    redis_available,
    start_api,
    start_worker,
)

RESULTS = Path(__file__).resolve().parent / "results" / "scale"
MEMORY_FLOW = "memory-chatbot"
RETENTION_OFF = {
    f"FLOWFLEET_RETENTION_{what}_DAYS": "0"
    for what in ("RUNS", "EVENTS", "MESSAGES", "DEAD_LETTERS")
}
MEMORY_FILE = LANGFLOW_FIXTURES / "Memory Chatbot.json"
SUBMIT_FLOW = "flow-00"  # a loaded flow id: its list grows by the submits
LIST_FLOW = "flow-07"
# A model that answers at once: the lines time flowfleet and PostgreSQL, not the model.
SIM = {"ttft_s": 0.0, "token_s": 0.0, "tokens": 8}
LIMIT_RATIO = 2.0
LIVE = ("queued", "running")
WARMUP = 20
MIN_REPS = 10

Probe = Callable[[Conn, int], Awaitable[None]]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
    }


async def timed(
    sides: list[tuple[Conn, Probe]], reps: int, budget_s: float
) -> list[dict[str, float]]:
    """Each side's ``probe`` a few times unmeasured, then ``reps`` times, the sides taking
    turns request by request (so both meet the same machine: this one is shared, and its
    speed drifts over minutes), or fewer (at least ``MIN_REPS``) when they pass
    ``budget_s``: a query that takes seconds on the full database is not run 200 times."""
    began = time.perf_counter()
    for i in range(min(WARMUP, reps)):
        for conn, probe in sides:
            await probe(conn, -1 - i)
        if time.perf_counter() - began > budget_s / 4:
            break
    times: list[list[float]] = [[] for _ in sides]
    began = time.perf_counter()
    for i in range(reps):
        if len(times[0]) >= MIN_REPS and time.perf_counter() - began > budget_s:
            break
        order = range(len(sides)) if i % 2 == 0 else reversed(range(len(sides)))
        for k in order:
            conn, probe = sides[k]
            start = time.perf_counter()
            await probe(conn, i)
            times[k].append(time.perf_counter() - start)
    return [percentiles(t) for t in times]


async def expect(conn: Conn, method: str, path: str, body: Any = None, want: int = 200) -> Any:
    status, answer = await conn.request(method, path, body)
    if status != want:
        raise RuntimeError(f"{method} {path}: {status} {str(answer)[:300]}")
    return answer


def probes(shape: Shape, rng: random.Random) -> dict[str, tuple[Probe, str]]:
    """Each measured operation, as one request (or one run), and its reps' name in args."""
    sample = [run_id(rng.randrange(shape.runs)) for _ in range(1000)]
    typical = f"sess-{(shape.runs // 2 // 200) * 20 + 7}"  # a 10-turn session, mid-way
    page2: dict[str, str] = {}

    async def submit(conn: Conn, i: int) -> None:
        await expect(conn, "POST", f"/v1/flows/{SUBMIT_FLOW}/runs", {"input": f"q {i}"}, 202)

    async def poll(conn: Conn, i: int) -> None:
        await expect(conn, "GET", f"/v1/runs/{sample[i % len(sample)]}")

    def listing(query: str, at_least: int) -> Probe:
        async def probe(conn: Conn, i: int) -> None:
            page = await expect(conn, "GET", f"/v1/runs?limit=50{query}")
            if len(page["items"]) < at_least:
                raise RuntimeError(f"/v1/runs?{query}: {len(page['items'])} items")

        return probe

    async def cursor(conn: Conn, i: int) -> None:
        if "cursor" not in page2:
            first = await expect(conn, "GET", "/v1/runs?limit=50")
            page2["cursor"] = first["next_cursor"]
        await expect(conn, "GET", f"/v1/runs?limit=50&cursor={page2['cursor']}")

    def history(session: str, at_least: int) -> Probe:
        # The whole history, page by page (1,000 messages a page, the API's default).
        async def probe(conn: Conn, i: int) -> None:
            read, after = 0, None
            while True:
                query = "" if after is None else f"?after={after}"
                got = await expect(conn, "GET", f"/v1/sessions/{session}/messages{query}")
                read += len(got["messages"])
                after = got["next_after"]
                if after is None:
                    break
            if read < at_least:
                raise RuntimeError(f"{session}: {read} messages")

        return probe

    async def memory_run(conn: Conn, i: int) -> None:
        body = {"input": f"turn {i}: what did I say first?", "session_id": LONG_SESSION}
        run = await expect(conn, "POST", f"/v1/flows/{MEMORY_FLOW}/runs?wait=60", body)
        if run["status"] != "succeeded":
            raise RuntimeError(f"memory run: {run['status']} {run.get('error')}")

    long_messages = 2 * shape.long_turns
    return {
        "submit": (submit, "reps"),
        "poll": (poll, "reps"),
        "list (no filter)": (listing("", 50), "reps"),
        "list flow_id": (listing(f"&flow_id={LIST_FLOW}", 1), "reps"),
        "list session_id": (listing(f"&session_id={typical}", 1), "reps"),
        "list status=failed": (listing("&status=failed", 1), "reps"),
        "list dead letters": (listing(f"&status=failed&error_code={DEAD_LETTER}", 1), "reps"),
        "list page 2 (cursor)": (cursor, "reps"),
        "history, 10-turn session": (history(typical, 20), "reps"),
        f"history, {shape.long_turns:,}-turn session": (
            history(LONG_SESSION, long_messages),
            "history_reps",
        ),
        "Memory run on it (end to end)": (memory_run, "run_reps"),
    }


async def drained(conn: Conn, timeout_s: float = 300) -> None:
    """Until no run is queued or running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pages = [await expect(conn, "GET", f"/v1/runs?limit=1&status={s}") for s in LIVE]
        if not any(page["items"] for page in pages):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"runs still queued or running after {timeout_s} s")


def history_read(dsns: list[str], reps: int) -> list[dict[str, float]]:
    """The worker's own history query (worker/execute.py ``_HISTORY``, what the Memory
    component's turns come from), on the long session, timed from here, the databases
    taking turns."""
    from sqlalchemy.dialects import postgresql

    from worker.execute import _HISTORY  # the query as the worker sends it

    sql = str(_HISTORY.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    limit = _HISTORY._limit  # type: ignore[attr-defined]
    params = {"session_id": LONG_SESSION, "owner": "anonymous", "param_1": limit}
    times: list[list[float]] = [[] for _ in dsns]
    conns = [psycopg.connect(dsn) for dsn in dsns]
    try:
        for i in range(reps + WARMUP):
            for k, conn in enumerate(conns):
                began = time.perf_counter()
                rows = conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
                if i >= WARMUP:
                    times[k].append(time.perf_counter() - began)
                if len(rows) != limit:
                    raise RuntimeError(f"history read: {len(rows)} rows, not {limit}")
    finally:
        for conn in conns:
            conn.close()
    return [percentiles(t) for t in times]


async def retention(
    sides: list[tuple[str, str]], purge_runs: int, reps: int
) -> list[dict[str, Any]]:
    """``purge_expired`` with a cutoff that expires exactly the ``purge_runs`` oldest runs,
    ``reps`` times on each (dsn, database url), taking turns; or why it could not be called."""
    try:
        from worker.retention import purge_expired
    except ImportError:
        skipped = {"skipped": "worker.retention.purge_expired is not there (branch retention)"}
        return [skipped for _ in sides]
    times: list[list[float]] = [[] for _ in sides]
    returned: list[Any] = [None for _ in sides]
    for _ in range(reps + 1):  # the first call is the warm-up (imports, first connection)
        for k, (dsn, url) in enumerate(sides):
            seconds, returned[k] = await purge_once(purge_expired, dsn, url, purge_runs)
            times[k].append(seconds)
    return [
        {**percentiles(t[1:]), "purge_runs": purge_runs, "returned": r}
        for t, r in zip(times, returned, strict=True)
    ]


async def purge_once(purge: Any, dsn: str, url: str, purge_runs: int) -> tuple[float, Any]:
    """One ``purge`` call whose cutoff expires the ``purge_runs`` oldest runs; its seconds."""
    from shared.db import create_engine, session_factory
    from shared.settings import Settings

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT created_at FROM runs ORDER BY created_at LIMIT 1 OFFSET %s", (purge_runs,)
        ).fetchone()
    if row is None:
        raise RuntimeError("fewer runs left than --purge-runs")
    days = (datetime.now(UTC) - row[0] + timedelta(seconds=1)).total_seconds() / 86400
    settings = Settings(
        database_url=url,
        retention_runs_days=days,
        retention_events_days=days,
        retention_messages_days=days,
        retention_dead_letters_days=days,
    )
    engine = create_engine(settings)
    try:
        args = _purge_args(purge, settings, engine, session_factory(engine))
        began = time.perf_counter()
        result = await purge(**args)
        seconds = time.perf_counter() - began
    finally:
        await engine.dispose()
    return seconds, result if isinstance(result, int | dict) else repr(result)


def _purge_args(purge: Any, settings: Any, engine: Any, factory: Any) -> dict[str, Any]:
    # Its arguments by name: an engine, a session factory, the settings.
    known = {
        "settings": settings,
        "engine": engine,
        "sessions": factory,
        "session_factory": factory,
        "factory": factory,
        "sessionmaker": factory,
    }
    args = {}
    for name, param in inspect.signature(purge).parameters.items():
        if name in known:
            args[name] = known[name]
        elif param.default is inspect.Parameter.empty:
            raise RuntimeError(f"purge_expired{inspect.signature(purge)}: no value for {name}")
    return args


@dataclass
class Side:
    """One database and the service started on it."""

    name: str
    dsn: str
    env: dict[str, str]
    shape: Shape
    procs: list[Proc] = field(default_factory=list)
    entry: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.procs[0].url


async def start(side: Side) -> Conn:
    """An API process and a worker on the side's database, with the two flows."""
    side.procs.append(start_api(side.env))
    side.procs.append(start_worker(side.env))
    async with httpx.AsyncClient(base_url=side.url, timeout=60) as http:
        for flow_id, path in ((SUBMIT_FLOW, FLOW_FILE), (MEMORY_FLOW, MEMORY_FILE)):
            (await http.put(f"/v1/flows/{flow_id}", content=path.read_bytes())).raise_for_status()
    return Conn(side.url)


async def measure(args: argparse.Namespace, sides: list[Side]) -> None:
    """Every line on every side, the sides taking turns; into each side's ``entry``."""
    for side in sides:
        side.entry["lines"] = {}
    conns: list[Conn] = []
    try:
        conns = [await start(side) for side in sides]
        lines = [probes(side.shape, random.Random(17)) for side in sides]
        for name, (_, reps_arg) in lines[0].items():
            pairs = [(conn, line[name][0]) for conn, line in zip(conns, lines, strict=True)]
            got = await timed(pairs, getattr(args, reps_arg), args.line_budget_s)
            report(name, sides, got)
            if name == "submit":  # the worker's runs of them would share the next lines
                for conn in conns:
                    await drained(conn)
    finally:
        for conn in conns:
            await conn.close()
        for side in sides:
            for proc in side.procs:
                proc.stop()
    name = f"Memory's history read (SQL, {args.long_turns:,}-turn session)"
    report(name, sides, history_read([side.dsn for side in sides], args.reps))
    urls = [(side.dsn, side.env["FLOWFLEET_DATABASE_URL"]) for side in sides]
    report("retention", sides, await retention(urls, args.purge_runs, args.purge_reps))


def report(name: str, sides: list[Side], got: list[dict[str, Any]]) -> None:
    for side, line in zip(sides, got, strict=True):
        side.entry["lines"][name] = line
    print(f"  {name}: " + "  ".join(f"{s.name} {g}" for s, g in zip(sides, got, strict=True)))


def fresh_database(name: str) -> str:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def counts(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        runs, messages, size = conn.execute(
            "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM session_messages), "
            "pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()  # type: ignore[misc]
    return {"runs": runs, "session_messages": messages, "database_size": size}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if not postgres_available() or not redis_available():
        sys.exit("bench-scale needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379")
    names = {"small": f"{args.database}_small", "full": args.database}
    sim_url, sim = start_llm_sim(**SIM)
    results: dict[str, Any] = {"machine": machine(), "phases": {}}
    sides = []
    try:
        for phase, runs in (("small", args.small_runs), ("full", args.runs)):
            dsn = fresh_database(names[phase])
            shape = Shape(runs=runs, long_turns=args.long_turns, memory_flow=MEMORY_FLOW)
            # The service's own retention job stays off (0 = keep forever): on 180 days of
            # runs it would purge millions of rows under the lines it measures; the
            # retention line calls the job itself.
            env = base_env(dsn, TEST_REDIS, sim_url) | RETENTION_OFF
            side = Side(phase, dsn, env, shape)
            migrate(side.env)
            print(f"{phase}: loading {runs:,} runs and {2 * runs:,} messages", flush=True)
            began = time.monotonic()
            timings = load(dsn, shape)
            side.entry["load"] = {**timings, "total_s": round(time.monotonic() - began, 1)}
            side.entry["rows"] = counts(dsn)
            print(f"{phase}: {side.entry}", flush=True)
            sides.append(side)
        results["load_avg_before"] = [round(x, 2) for x in os.getloadavg()]
        await measure(args, sides)
        results["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        stop_llm_sim(sim)
        if not args.keep:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
                for name in names.values():
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    results["phases"] = {side.name: side.entry for side in sides}
    return results


def table(results: dict[str, Any]) -> str:
    """The markdown table: each line's p50/p95 on both databases, and the p50 ratio."""
    small, full = (results["phases"][p] for p in ("small", "full"))
    rows = [
        f"| operation | small p50 / p95 ms | {full['rows']['runs']:,} runs p50 / p95 ms | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, a in small["lines"].items():
        b = full["lines"][name]
        if "skipped" in a or "skipped" in b:
            rows.append(f"| {name} | not available | not available | |")
            continue
        ratio = b["p50_ms"] / a["p50_ms"] if a["p50_ms"] else float("inf")
        flag = " **over 2x**" if ratio > LIMIT_RATIO else ""
        rows.append(
            f"| {name} | {a['p50_ms']} / {a['p95_ms']} | {b['p50_ms']} / {b['p95_ms']} "
            f"| {ratio:.2f}{flag} |"
        )
    return "\n".join(rows)


def markdown(results: dict[str, Any]) -> str:
    small, full = (results["phases"][p] for p in ("small", "full"))
    m = results["machine"]
    lines = [
        "# make bench-scale",
        "",
        table(results),
        "",
        f"- small: {small['rows']['runs']:,} runs, {small['rows']['session_messages']:,} "
        f"messages ({small['rows']['database_size']}); full: {full['rows']['runs']:,} runs, "
        f"{full['rows']['session_messages']:,} messages ({full['rows']['database_size']}).",
        f"- full load: {full['load']['total_s']} s (rows {full['load']['insert_s']} s, indexes "
        f"and keys {full['load']['index_s']} s, vacuum/analyze {full['load']['analyze_s']} s).",
        f"- machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gb']} GB; load average "
        f"{results['load_avg_before']} before the lines, {results['load_avg_after']} after "
        "(shared with other work); the two databases took turns, request by request.",
        "- retention: "
        + (
            full["lines"]["retention"]["skipped"]
            if "skipped" in full["lines"]["retention"]
            else f"each call deletes the {full['lines']['retention']['purge_runs']:,} oldest "
            "runs and their messages"
        ),
    ]
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    p.add_argument("--runs", type=int, default=5_000_000, help="runs in the full database")
    p.add_argument("--small-runs", type=int, default=20_000, help="runs in the small one")
    p.add_argument("--long-turns", type=int, default=10_000, help="turns of the long session")
    p.add_argument("--reps", type=int, default=200, help="requests a line")
    p.add_argument("--history-reps", type=int, default=30, help="reads of the long history")
    p.add_argument("--run-reps", type=int, default=50, help="Memory runs on the long session")
    p.add_argument(
        "--line-budget-s", type=float, default=60.0, help="seconds a line measures at most"
    )
    p.add_argument("--purge-runs", type=int, default=1000, help="runs one retention call deletes")
    p.add_argument("--purge-reps", type=int, default=10, help="retention calls")
    p.add_argument("--database", default="flowfleet_scale", help="dropped and made again")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    results = asyncio.run(main_async(args))
    results["args"] = {k: str(v) for k, v in vars(args).items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    text = markdown(results)
    (args.out / "results.md").write_text(text)
    print(text)
    return results


if __name__ == "__main__":
    main()
