"""`make bench-scale` works end to end at a tiny scale (the figures are not checked), and its
loader makes the rows it says it makes, with every index and key of the schema back."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from benchmarks.scale import main
from benchmarks.scale_load import DEAD_LETTER, LONG_SESSION, Shape, load, run_id
from tests.support.stack import migrated_database

pytestmark = pytest.mark.slow  # about a minute: two loads, the service started twice

# Each index by name, table, columns, uniqueness and whether it is partial (a predicate
# rebuilt from its definition prints its casts differently), and each constraint.
SCHEMA = """
SELECT concat_ws(' ', i.indexrelid::regclass, i.indrelid::regclass, i.indkey::text,
                 i.indisunique, i.indpred IS NOT NULL)
FROM pg_index i WHERE i.indrelid::regclass::text IN ('runs', 'session_messages', 'run_steps')
UNION ALL
SELECT conrelid::regclass || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid::regclass::text IN ('runs', 'session_messages', 'run_steps')
"""


def test_the_loader_makes_the_rows_it_describes_and_rebuilds_the_schema(tmp_path: Path) -> None:
    with migrated_database("postgresql", tmp_path) as url, psycopg.connect(url) as conn:
        before = sorted(r[0] for r in conn.execute(SCHEMA).fetchall())
        conn.commit()
        load(url, Shape(runs=2000, long_turns=100, memory_flow="memory-chatbot"))
        assert sorted(r[0] for r in conn.execute(SCHEMA).fetchall()) == before

        def one(sql: str) -> tuple:  # type: ignore[type-arg]
            row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
            assert row is not None
            return tuple(row)

        assert one("SELECT count(*), count(DISTINCT id) FROM runs") == (2000, 2000)
        assert one("SELECT count(*) FROM session_messages") == (4000,)
        # Every run has its user message and its answer, in its own session, in order.
        assert one(
            "SELECT count(*) FROM session_messages m JOIN runs r ON r.id = m.run_id "
            "WHERE m.session_id = r.session_id AND m.owner = r.owner"
        ) == (4000,)
        assert one(
            "SELECT count(*), count(DISTINCT run_id), min(owner), max(owner) "
            f"FROM session_messages WHERE session_id = '{LONG_SESSION}'"
        ) == (200, 100, "anonymous", "anonymous")
        assert one(f"SELECT DISTINCT flow_id FROM runs WHERE session_id = '{LONG_SESSION}'") == (
            "memory-chatbot",
        )
        # Only finished runs (the sweep would take up queued or running ones), and dead letters.
        statuses = dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY 1").fetchall())
        assert set(statuses) == {"succeeded", "failed", "cancelled"}
        dead = f"error_code = '{DEAD_LETTER}' AND status = 'failed'"
        assert one(f"SELECT count(*) FROM runs WHERE {dead}")[0] > 10
        # Months of history, ending an hour ago: retention has old rows to delete.
        oldest, newest = one("SELECT min(created_at), max(created_at) FROM runs")
        assert 179 < (datetime.now(UTC) - oldest).days <= 180
        assert (datetime.now(UTC) - newest).total_seconds() > 3000
        # The ids the benchmark polls are the loaded ones.
        assert one(f"SELECT count(*) FROM runs WHERE id = '{run_id(1234)}'") == (1,)
        # New messages get ids after the loaded ones.
        assert one("SELECT nextval('session_messages_id_seq')") == (4001,)


def test_bench_scale_runs_every_line_at_a_tiny_scale(tmp_path: Path) -> None:
    argv = ["--runs", "2000", "--small-runs", "200", "--long-turns", "100", "--reps", "5"]
    argv += ["--history-reps", "2", "--run-reps", "2", "--purge-runs", "20", "--purge-reps", "2"]
    main([*argv, "--database", "flowfleet_scale_test", "--out", str(tmp_path)])

    results = json.loads((tmp_path / "results.json").read_text())
    small, full = results["phases"]["small"], results["phases"]["full"]
    assert small["rows"]["runs"] == 200
    assert full["rows"] == {**full["rows"], "runs": 2000, "session_messages": 4000}
    retention = importlib.util.find_spec("worker.retention") is not None
    for phase in (small, full):
        lines = phase["lines"]
        assert len(lines) == 13
        for name, line in lines.items():
            if name == "retention" and not retention:
                assert "skipped" in line
                continue
            assert line["n"] > 0, name
            assert 0 < line["p50_ms"] <= line["p95_ms"], (name, line)
        assert lines["submit"]["n"] == 5
        assert lines["history, 100-turn session"]["n"] == 2
    text = (tmp_path / "results.md").read_text()
    assert "| list dead letters |" in text
    assert "| Memory run on it (end to end) |" in text
    assert ("| retention | not available |" in text) is not retention
