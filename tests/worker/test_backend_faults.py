"""A misbehaving LLM backend: runs succeed through retries or fail with backend_error."""

from __future__ import annotations

import httpx

from tests.support.faults import Tally
from tests.support.stack import Stack


def test_thirty_percent_errors_are_absorbed_by_retries(
    stack: Stack, client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"error_rate": 0.3, "error_status": [429, 500], "seed": 7})
    tally = Tally("llm 30% 429/500")
    for i in range(12):
        tally.submit(client, "chat", f"flaky {i}", f"s-flaky-{i}")
    runs = tally.settle(client, timeout=90)
    figures = tally.report(client, runs, stack.workers)

    assert figures["lost"] == 0
    assert figures["duplicated_results"] == 0
    assert figures["duplicated_messages"] == 0
    assert all(
        r["status"] == "succeeded" or r["error"]["code"] == "backend_error" for r in runs.values()
    )
    calls = len(sim.get("/_sim/requests").json())
    print(f"[llm 30% 429/500] backend calls={calls} for runs={len(runs)}")  # noqa: T201
    assert calls > len(runs)  # some calls were retried
    assert figures["succeeded"] >= 10
