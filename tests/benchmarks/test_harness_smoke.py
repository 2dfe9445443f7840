"""The benchmark harness still runs end to end, with tiny numbers (the figures are not checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.harness import main
from tests.support.stack import IN_CI, postgres_available, redis_available

pytestmark = pytest.mark.skipif(
    not IN_CI and not (postgres_available() and redis_available()),
    reason="the harness needs PostgreSQL and Redis on 127.0.0.1",
)


def test_harness_writes_every_result_with_tiny_numbers(tmp_path: Path) -> None:
    argv = ["--levels", "2", "--duration", "1.5", "--designs", "flowfleet,direct"]
    argv += ["--submit-duration", "1", "--submit-concurrency", "4"]
    argv += ["--inflight-runs", "6", "--inflight-call-s", "0.5", "--out", str(tmp_path)]
    results = main(argv)

    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["machine"]["nproc"] == results["machine"]["nproc"]
    for name in ("flowfleet", "direct"):
        (row,) = saved["compare"]["designs"][name]["rows"]
        assert row["concurrency"] == 2
        assert row["completed"] > 0
        assert row["errors"] == 0
    assert saved["submit"]["accepted_per_s"] > 0
    assert saved["inflight"]["succeeded"] == 6
    assert "| flowfleet | 2 |" in (tmp_path / "bench.md").read_text()
    assert (tmp_path / "bench.png").stat().st_size > 0
