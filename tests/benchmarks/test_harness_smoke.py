"""The benchmark harness: its pieces without the services (a closed-loop level over a
stand-in run, its summary row, the report and the chart), and, marked slow (a load
scenario: about two minutes of levels, designs started and stopped), the whole harness end
to end with tiny numbers (the figures are not checked)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.designs import _with_stages
from benchmarks.harness import main
from benchmarks.http import Conn
from benchmarks.load import closed_loop, summarise
from tests.support.stack import IN_CI, postgres_available, redis_available

STAGES = {"in": 0.001, "queued": 0.002, "running": 0.025, "out": 0.002}


async def _stand_in_run(conn: Conn, n: int) -> dict[str, Any]:
    """30 ms, with a flowfleet run's stage times; every fifth run fails."""
    await asyncio.sleep(0.03)
    if n % 5 == 0:
        raise ConnectionError(f"run {n} refused")
    return {"status": "succeeded", "stages_s": STAGES}


async def test_a_level_is_counted_summarised_and_reported(tmp_path: Path) -> None:
    level = await closed_loop(
        _stand_in_run, 2, 0.6, {"tests": os.getpid()}, "http://127.0.0.1:9", warmup_s=0.1
    )
    row = {**summarise(level, llm_s=0.02), "measured_at": 0.0}

    assert row["concurrency"] == 2
    assert row["completed"] > 0
    assert row["errors"] > 0
    assert "ConnectionError: run" in row["error_samples"][0]
    assert row["runs_per_s"] == round(row["completed"] / 0.6, 1)
    # "running" less the model's own time; the other stages as they are.
    assert row["stage_overhead_p50_ms"] == {"in": 1.0, "queued": 2.0, "running": 5.0, "out": 2.0}
    assert row["server_overhead_p50_ms"] == pytest.approx(7.0)
    assert set(row["cpu_s"]) == set(row["peak_rss_mb"]) == {"tests"}

    machine = {"nproc": 2, "cpu": "test", "memory_gb": 1.0, "python": "3", "load_avg": [0.0]}
    machine["round_trip"] = {"busy_us": 50, "idle_us": 80}
    designs = {name: {"rows": [row]} for name in ("flowfleet", "direct")}
    results = {
        "machine": machine,
        "compare": {"levels": [2], "duration_s": 0.6, "llm_s": 0.02, "designs": designs},
    }
    md = report.markdown(results)
    assert f"| flowfleet | 2 | {row['runs_per_s']} |" in md
    assert "| 2 | 1.00× |" in md  # flowfleet/direct
    assert "Where flowfleet's time goes" in md
    report.chart(results, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.timeout(600)  # 115 s on two idle cores, 285 s beside other suites: not 120 s
@pytest.mark.skipif(
    not IN_CI and not (postgres_available() and redis_available()),
    reason="the harness needs PostgreSQL and Redis on 127.0.0.1",
)
def test_harness_writes_every_result_with_tiny_numbers(tmp_path: Path) -> None:
    argv = ["--levels", "2,3", "--duration", "1.5", "--designs", "flowfleet,direct"]
    argv += ["--flows", "basic,agent", "--agent-levels", "2"]
    argv += ["--submit-duration", "1", "--submit-concurrency", "4"]
    argv += ["--inflight-runs", "6", "--inflight-call-s", "0.5", "--out", str(tmp_path)]
    results = main(argv)

    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["machine"]["nproc"] == results["machine"]["nproc"]
    rows = {name: saved["compare"]["designs"][name]["rows"] for name in ("flowfleet", "direct")}
    for measured in rows.values():
        assert [row["concurrency"] for row in measured] == [2, 3]
        assert all(row["completed"] > 0 and row["errors"] == 0 for row in measured)
    # Level by level: every design's first level before any design's second.
    first, second = zip(*rows.values(), strict=True)
    assert max(r["measured_at"] for r in first) < min(r["measured_at"] for r in second)
    stages = rows["flowfleet"][0]["stage_overhead_p50_ms"]
    assert set(stages) == {"in", "queued", "running", "out"}
    assert all(ms is not None and ms >= 0 for ms in stages.values())
    assert rows["flowfleet"][0]["server_overhead_p50_ms"] is not None
    assert "Where flowfleet's time goes" in (tmp_path / "bench.md").read_text()
    trip = saved["machine"]["round_trip"]
    assert trip["busy_us"] > 0
    assert trip["idle_us"] > 0
    assert saved["submit"]["accepted_per_s"] > 0
    assert saved["inflight"]["succeeded"] == 6
    assert "| flowfleet | 2 |" in (tmp_path / "bench.md").read_text()
    assert (tmp_path / "bench.png").stat().st_size > 0
    # The agent flow on both designs, its calls counted from llm-sim's log.
    agent = saved["agent"]
    assert (agent["flow"], agent["model_calls"], agent["tool_calls"]) == ("agent", 3, 2)
    assert agent["llm_s"] > 0.5
    for name in ("flowfleet", "direct"):
        (row,) = agent["designs"][name]["rows"]
        assert row["concurrency"] == 2
        assert row["completed"] > 0, row
        assert row["errors"] == 0, row["error_samples"]
    md = (tmp_path / "bench.md").read_text()
    assert "Agent flow" in md
    assert "| flowfleet | 2 |" in md.split("Agent flow", 1)[1]


def test_a_runs_stages_split_its_time_by_its_own_timestamps() -> None:
    run = {
        "created_at": "2026-01-01T00:00:00.002000+00:00",
        "started_at": "2026-01-01T00:00:00.006000+00:00",
        "finished_at": "2026-01-01T00:00:01.000000+00:00",
    }
    sent = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    out = _with_stages(run, sent, sent + 1.003)
    expected = {"in": 0.002, "queued": 0.004, "running": 0.994, "out": 0.003}
    assert out["stages_s"] == pytest.approx(expected, abs=1e-6)  # epoch seconds: µs precision
