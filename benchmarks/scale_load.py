"""Bulk rows for `make bench-scale`: runs and their session messages, made in PostgreSQL.

The rows are generated where they are stored (``INSERT ... SELECT`` over
``generate_series``): a COPY from this process would format every row in Python and ship it
to the server only to be parsed again, which on this 2-core machine is the slow half of a
load. The tables' indexes and constraints are dropped first and rebuilt from their own
definitions afterwards (one sorted build each instead of 15,000,000 random b-tree inserts),
and the two tables load on two connections at once, one core each.

What the rows look like (deterministic in ``i``, the run's number, oldest first):

- ``created_at`` spread evenly over ``SPAN_DAYS`` days ending an hour ago, so a retention
  job has months of expired rows to delete;
- 20 flows (``flow-00`` .. ``flow-19``, ``flow-00`` being the flow the benchmark submits
  to), 50 owners, sessions of 10 turns interleaved 20 at a time (a conversation's turns
  are minutes apart, among other conversations' turns);
- 93% succeeded, 5% failed (1 in 5 of them a dead letter, ``exhausted_retries``), 2%
  cancelled; none queued or running (the sweep would re-enqueue those);
- every run has its two messages (the user's and the answer), 2 x runs in all;
- one long session, ``LONG_SESSION``: every ``runs // long_turns``-th run, Memory
  Chatbot's flow, owned by ``anonymous`` (auth is off in the benchmark), spread over the
  whole span like a conversation that has gone on for months.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg

SPAN_DAYS = 180
FLOWS = 20
OWNERS = 50
LONG_SESSION = "scale-long-session"
DEAD_LETTER = "exhausted_retries"
CHUNK = 1_000_000  # rows a statement: progress to print, transactions of bounded size
TABLES = ("runs", "session_messages")


@dataclass(frozen=True)
class Shape:
    """How many runs, and how the long session sits among them."""

    runs: int
    long_turns: int
    memory_flow: str
    submit_flow: str = "flow-00"

    @property
    def stride(self) -> int:
        if self.runs < 2 * self.long_turns:
            raise ValueError("runs must be at least twice the long session's turns")
        return self.runs // self.long_turns


def run_id(i: int) -> str:
    """The id of run ``i``, as the SQL below makes it (md5 of its number, as a uuid)."""
    import hashlib
    import uuid

    return str(uuid.UUID(hashlib.md5(f"scale-run-{i}".encode()).hexdigest()))


# Run i's columns as SQL over ``i`` (a bigint), shared by both tables' statements.
def _columns(shape: Shape) -> dict[str, str]:
    long = f"(i % {shape.stride} = 0 AND i / {shape.stride} < {shape.long_turns})"
    session = "'sess-' || ((i / 200) * 20 + i % 20)"
    pick = "((i * 7919) % 1000)"  # a scrambled 0..999 per run: statuses and error codes
    return {
        "long": long,
        "id": "md5('scale-run-' || i)::uuid::text",
        "flow_id": f"CASE WHEN {long} THEN '{shape.memory_flow}' "
        f"ELSE 'flow-' || lpad((i % {FLOWS})::text, 2, '0') END",
        "session_id": f"CASE WHEN {long} THEN '{LONG_SESSION}' ELSE {session} END",
        "owner": f"CASE WHEN {long} THEN 'anonymous' "
        f"ELSE 'owner-' || lpad((((i / 200) * 20 + i % 20) % {OWNERS})::text, 2, '0') END",
        "status": f"CASE WHEN {long} OR {pick} < 930 THEN 'succeeded' "
        f"WHEN {pick} < 980 THEN 'failed' ELSE 'cancelled' END",
        "error_code": f"CASE WHEN {long} OR {pick} < 930 OR {pick} >= 980 THEN NULL "
        f"WHEN {pick} < 940 THEN '{DEAD_LETTER}' WHEN {pick} < 960 THEN 'backend_error' "
        "ELSE 'flow_error' END",
        "created_at": f"now() - interval '1 hour' - interval '{SPAN_DAYS} days' "
        f"+ (interval '{SPAN_DAYS} days') * (i::float8 / {shape.runs})",
    }


def _runs_sql(shape: Shape, start: int, stop: int) -> str:
    c = _columns(shape)
    return f"""
INSERT INTO runs (id, flow_id, flow_version, session_id, owner, input, tweaks, meta, status,
                  output, error_code, error_message, usage, cached, attempts, created_at,
                  started_at, finished_at, worker)
SELECT id, flow_id, 'v-3f9a1c0d2b7e4a65', session_id, owner,
       'A question from the user, number ' || i || ', about something or other?',
       '{{}}', '{{}}', status,
       CASE WHEN status = 'succeeded' THEN json_build_object('text',
            'An answer of a realistic length to question ' || i || ', a few sentences that '
            || 'a model wrote back, which the run keeps as its output for the client.') END,
       error_code,
       CASE WHEN error_code IS NOT NULL THEN 'the run failed: ' || error_code END,
       '{{"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}}',
       false, CASE WHEN error_code = '{DEAD_LETTER}' THEN 5 ELSE 1 END, created_at,
       created_at + interval '40 ms', created_at + interval '1200 ms', 'scale-host:4242'
FROM (SELECT i, {c["id"]} AS id, {c["flow_id"]} AS flow_id, {c["session_id"]} AS session_id,
             {c["owner"]} AS owner, {c["status"]} AS status, {c["error_code"]} AS error_code,
             {c["created_at"]} AS created_at
      FROM generate_series({start}::bigint, {stop - 1}::bigint) AS i) AS r
"""


def _messages_sql(shape: Shape, start: int, stop: int) -> str:
    c = _columns(shape)
    return f"""
INSERT INTO session_messages (id, session_id, owner, run_id, role, content, created_at)
SELECT m + 1, {c["session_id"]}, {c["owner"]}, {c["id"]},
       CASE WHEN m % 2 = 0 THEN 'user' ELSE 'assistant' END,
       CASE WHEN m % 2 = 0
            THEN 'A question from the user, number ' || i || ', about something or other?'
            ELSE 'An answer of a realistic length to question ' || i || ', a few sentences '
                 || 'that a model wrote back, kept as the turn of the conversation.' END,
       {c["created_at"]} + interval '1200 ms'
FROM (SELECT m, m / 2 AS i FROM generate_series({2 * start}::bigint, {2 * stop - 1}::bigint)
      AS m) AS s
"""


def _definitions(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(table, name, DDL re-creating it) for each constraint and index of the two tables and
    each foreign key into them: keys first (before the foreign keys that need them), then
    the foreign keys, then the indexes."""
    constraints = conn.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname,
               format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', c.conrelid::regclass, c.conname,
                      pg_get_constraintdef(c.oid))
        FROM pg_constraint c
        WHERE (c.conrelid::regclass::text = ANY(%s) AND c.contype IN ('p', 'u', 'f'))
           OR (c.confrelid::regclass::text = ANY(%s) AND c.contype = 'f')
        ORDER BY c.contype = 'f', c.conname
        """,
        (list(TABLES), list(TABLES)),
    ).fetchall()
    indexes = conn.execute(
        """
        SELECT i.tablename, i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = ANY(%s) AND NOT EXISTS (
            SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        ORDER BY i.indexname
        """,
        (list(TABLES),),
    ).fetchall()
    return [*constraints, *indexes]


def _drop(conn: psycopg.Connection, defs: list[tuple[str, str, str]]) -> None:
    for table, name, ddl in reversed(defs):  # the foreign key before the keys it needs
        if ddl.startswith("ALTER TABLE"):
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        else:
            conn.execute(f'DROP INDEX "{name}"')


def _parallel(dsn: str, jobs: list[list[str]], label: str) -> None:
    """Each job's statements in order on a connection of its own, the jobs side by side."""
    errors: list[BaseException] = []

    def work(statements: list[str]) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SET maintenance_work_mem = '512MB'")
                conn.execute("SET synchronous_commit = off")
                for sql in statements:
                    began = time.monotonic()
                    conn.execute(sql)  # type: ignore[arg-type]  # built here, not from input
                    print(
                        f"  {label}: {_what(sql)} in {time.monotonic() - began:.1f} s", flush=True
                    )
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(job,)) for job in jobs if job]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _what(sql: str) -> str:
    words = sql.split()
    if words[0] == "INSERT":
        series = sql.split("generate_series(", 1)[1].split(")", 1)[0]
        return f"{words[2]} rows {series.replace('::bigint', '')}"
    return " ".join(words[:6])


def load(dsn: str, shape: Shape) -> dict[str, float]:
    """Empty both tables, then fill them to ``shape``; returns seconds per phase."""
    timings: dict[str, float] = {}
    began = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():  # all or nothing: a failed drop leaves the schema whole
            defs = _definitions(conn)
            conn.execute("TRUNCATE session_messages, run_steps, runs")
            _drop(conn, defs)
    runs_jobs = [
        _runs_sql(shape, s, min(s + CHUNK, shape.runs)) for s in range(0, shape.runs, CHUNK)
    ]
    msg_jobs = [
        _messages_sql(shape, s, min(s + CHUNK // 2, shape.runs))
        for s in range(0, shape.runs, CHUNK // 2)
    ]
    _parallel(dsn, [runs_jobs, msg_jobs], "insert")
    timings["insert_s"] = time.monotonic() - began
    began = time.monotonic()
    by_table = {t: [ddl for table, _, ddl in defs if table == t] for t in TABLES}
    fk = [ddl for _, _, ddl in defs if "FOREIGN KEY" in ddl]
    _parallel(dsn, [[d for d in by_table[t] if d not in fk] for t in TABLES], "index")
    _parallel(dsn, [fk], "constraint")
    timings["index_s"] = time.monotonic() - began
    began = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT setval('session_messages_id_seq', (SELECT max(id) FROM session_messages))"
        )
    _parallel(dsn, [["VACUUM (ANALYZE) runs"], ["VACUUM (ANALYZE) session_messages"]], "analyze")
    timings["analyze_s"] = time.monotonic() - began
    return {k: round(v, 1) for k, v in timings.items()}
