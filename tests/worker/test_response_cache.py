"""Session-less repeats of a caching flow are answered from Redis, never from the backend."""

from __future__ import annotations

import uuid

import httpx

from tests.support.stack import wait_for_run
from tests.worker.conftest import Fleet


def _run(client: httpx.Client, **body: object) -> dict[str, object]:
    run = client.post("/v1/flows/prompt/runs", json=body).json()
    return wait_for_run(client, str(run["id"]), timeout=30)


def _completions(fleet: Fleet) -> int:
    return int(httpx.get(f"{fleet.sim_url}/_sim/stats").json()["completions"])


def test_a_repeated_input_is_answered_from_the_cache(fleet: Fleet) -> None:
    question = f"cache me {uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=fleet.api.url, timeout=30) as client:
        first = _run(client, input=question)
        calls = _completions(fleet)
        second = _run(client, input=question)
        other = _run(client, input=question + "?")

    assert (first["status"], first["cached"]) == ("succeeded", False)
    assert (second["status"], second["cached"]) == ("succeeded", True)
    assert second["output"] == first["output"]
    assert other["cached"] is False
    assert _completions(fleet) == calls + 1  # only the different input reached the backend


def test_runs_in_a_session_never_use_the_cache(fleet: Fleet) -> None:
    question = f"session question {uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=fleet.api.url, timeout=30) as client:
        _run(client, input=question)
        in_session = _run(client, input=question, session_id=f"s-{uuid.uuid4().hex[:6]}")

    assert (in_session["status"], in_session["cached"]) == ("succeeded", False)
