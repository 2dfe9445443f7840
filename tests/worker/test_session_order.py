"""One turn at a time per conversation, through real API and worker processes (issue 17).

The flow is LangFlow's Memory Chatbot: its prompt holds the session's history, so each
llm-sim request shows exactly which earlier turns the run saw. Every stack here has two
workers of 50 slots each: without per-session order the turns of a burst run side by side.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.flows.langflow_fixtures import load as _export
from tests.support.faults import isolated_stack
from tests.support.stack import Stack, start_worker, wait_for_run

FLOW = "memory-chatbot"
PROMPT_NODE = "Prompt-9wc4j"
SLOW_S = 0.3  # each LLM call's time to first token: turns that overlapped would show it


@pytest.fixture(scope="module")
def two_workers(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    with isolated_stack(llm_sim, infra["redis_url"], workers=2) as stack:
        with stack.client() as c:
            assert c.put(f"/v1/flows/{FLOW}", json=_export("Memory Chatbot.json")).status_code in (
                200,
                201,
            )
        yield stack


@pytest.fixture
def client(two_workers: Stack) -> Iterator[httpx.Client]:
    with two_workers.client() as c:
        yield c


def _submit(client: httpx.Client, text: str, session: str | None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"input": text, **extra}
    if session is not None:
        body["session_id"] = session
    return client.post(f"/v1/flows/{FLOW}/runs", json=body)


def _accepted(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _at(run: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(run[field])


def _memory(turns: list[tuple[str, str]]) -> str:
    """The Memory component's rendering of earlier turns (as test_langflow_runs checks it)."""
    return "\n".join(f"User: {said}\nAI: {answer}" for said, answer in turns)


def _system_prompt_for(sim: httpx.Client, text: str) -> str:
    """The system message of the one llm-sim request whose user message is ``text``."""
    calls = [c for c in sim.get("/_sim/requests").json() if c["messages"][-1]["content"] == text]
    assert len(calls) == 1, f"{len(calls)} LLM calls for {text!r}"
    return str(calls[0]["messages"][0]["content"])


def _template() -> str:
    flow = _export("Memory Chatbot.json")
    node = next(n for n in flow["data"]["nodes"] if n["id"] == PROMPT_NODE)
    return str(node["data"]["node"]["template"]["template"]["value"])


def test_a_burst_of_ten_turns_runs_in_order_each_seeing_every_earlier_turn(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"ttft_s": SLOW_S})
    texts = [f"turn {i:02d} of the burst" for i in range(10)]
    ids = [_accepted(_submit(client, text, "burst")) for text in texts]  # no waiting between
    runs = [wait_for_run(client, run_id, timeout=60) for run_id in ids]
    gaps = [
        (_at(after, "started_at") - _at(before, "finished_at")).total_seconds()
        for before, after in zip(runs, runs[1:], strict=False)
    ]
    print(f"\n[burst of 10 turns] gaps between turns: max {max(gaps) * 1000:.0f} ms")  # noqa: T201

    assert [r["status"] for r in runs] == ["succeeded"] * 10
    for before, after in zip(runs, runs[1:], strict=False):
        # Strictly one at a time, in submit order: a turn starts after the previous one ended.
        assert _at(after, "started_at") >= _at(before, "finished_at"), (before, after)
    template = _template()
    for k, text in enumerate(texts):
        earlier = [(texts[j], runs[j]["output"]["text"]) for j in range(k)]
        assert _system_prompt_for(sim, text) == template.replace("{memory}", _memory(earlier))
    history = client.get("/v1/sessions/burst/messages").json()["messages"]
    assert len(history) == 20
    expected = [m for j, text in enumerate(texts) for m in (text, runs[j]["output"]["text"])]
    assert [m["content"] for m in history] == expected
    assert [m["role"] for m in history] == ["user", "assistant"] * 10


def test_runs_of_different_sessions_still_run_side_by_side(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"ttft_s": 2.0})
    ids = [_accepted(_submit(client, f"hello {i}", f"side-{i}")) for i in range(4)]
    ids.append(_accepted(_submit(client, "no session", None)))
    runs = [wait_for_run(client, run_id, timeout=30) for run_id in ids]

    assert {r["status"] for r in runs} == {"succeeded"}
    # Every run started before any ended: they overlapped, none waited for another.
    assert max(_at(r, "started_at") for r in runs) < min(_at(r, "finished_at") for r in runs)


def test_reject_answers_409_while_the_session_has_a_run_in_progress(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"ttft_s": 1.5})
    first = _accepted(_submit(client, "first", "rej"))
    refused = _submit(client, "second", "rej", multitask="reject")

    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["code"] == "session_busy"
    assert problem["run_id"] == first
    assert refused.headers["content-type"].startswith("application/problem+json")
    # Another session, and a run without one, are not refused.
    _accepted(_submit(client, "elsewhere", "rej-other", multitask="reject"))
    _accepted(_submit(client, "no session", None, multitask="reject"))

    assert wait_for_run(client, first)["status"] == "succeeded"
    later = _accepted(_submit(client, "third", "rej", multitask="reject"))  # idle again: taken
    assert wait_for_run(client, later)["status"] == "succeeded"
    history = client.get("/v1/sessions/rej/messages").json()["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["first", "third"]


def test_a_reject_replayed_with_its_idempotency_key_answers_its_own_run(
    client: httpx.Client, sim: httpx.Client
) -> None:
    """The retry of a `reject` submit finds its own run in progress: that run (200), not 409."""
    sim.put("/_sim/config", json={"ttft_s": 1.5})
    body = {"input": "once", "session_id": "idem", "multitask": "reject"}
    headers = {"Idempotency-Key": "idem-1"}
    first = client.post(f"/v1/flows/{FLOW}/runs", json=body, headers=headers)
    again = client.post(f"/v1/flows/{FLOW}/runs", json=body, headers=headers)
    other = client.post(f"/v1/flows/{FLOW}/runs", json={**body, "input": "twice"})

    assert first.status_code == 202, first.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert wait_for_run(client, first.json()["id"])["status"] == "succeeded"


def test_racing_rejects_for_an_idle_session_take_one(
    two_workers: Stack, client: httpx.Client, sim: httpx.Client
) -> None:
    """A client double-texting with `reject`: of six submits sent at once to an idle
    session, exactly one is taken and the others answer 409."""
    sim.put("/_sim/config", json={"ttft_s": 1.0})
    start = threading.Barrier(6)

    def send(i: int) -> httpx.Response:
        with two_workers.client() as own:
            start.wait()
            return _submit(own, f"double text {i}", "race", multitask="reject")

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))

    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409, 409, 409, 409, 409], [a.text for a in answers]
    (taken,) = [a.json()["id"] for a in answers if a.status_code == 202]
    assert wait_for_run(client, taken)["status"] == "succeeded"
    assert len(client.get("/v1/sessions/race/messages").json()["messages"]) == 2


def test_interrupt_cancels_the_active_turn_then_runs(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"ttft_s": 20.0})
    active = _accepted(_submit(client, "long answer", "intr"))
    wait_for_run(client, active, until={"running"})
    waiting = _accepted(_submit(client, "queued behind it", "intr"))
    time.sleep(0.5)
    assert client.get(f"/v1/runs/{waiting}").json()["status"] == "queued"  # parked, not run

    sim.put("/_sim/config", json={"ttft_s": 0.0})
    started = time.monotonic()
    newest = _accepted(_submit(client, "never mind, this instead", "intr", multitask="interrupt"))
    done = wait_for_run(client, newest, timeout=30)
    took = time.monotonic() - started

    interrupted = client.get(f"/v1/runs/{active}").json()
    dropped = client.get(f"/v1/runs/{waiting}").json()
    assert interrupted["status"] == "cancelled"
    assert dropped["status"] == "cancelled"
    assert done["status"] == "succeeded"
    assert _at(done, "started_at") >= _at(interrupted, "finished_at")
    assert took < 15, f"the interrupting turn waited {took:.1f} s (the old one's LLM call)"
    # The cancelled turns left nothing in the history: the new one saw none of them.
    assert _system_prompt_for(sim, "never mind, this instead") == _template().replace(
        "{memory}", ""
    )
    history = client.get("/v1/sessions/intr/messages").json()["messages"]
    assert [m["content"] for m in history][0] == "never mind, this instead"
    assert len(history) == 2


def test_cancelling_a_waiting_turn_lets_the_next_one_run_in_order(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"ttft_s": 1.0})
    first = _accepted(_submit(client, "one", "cxl"))
    second = _accepted(_submit(client, "two", "cxl"))
    third = _accepted(_submit(client, "three", "cxl"))
    cancelled = client.post(f"/v1/runs/{second}/cancel")
    assert cancelled.status_code == 200, cancelled.text  # it was queued: cancelled at once

    runs = [wait_for_run(client, run_id) for run_id in (first, second, third)]
    assert [r["status"] for r in runs] == ["succeeded", "cancelled", "succeeded"]
    assert _at(runs[2], "started_at") >= _at(runs[0], "finished_at")
    history = client.get("/v1/sessions/cxl/messages").json()["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["one", "three"]


def test_a_killed_worker_holds_its_turn_no_longer_than_its_lease(
    infra: dict[str, str], llm_sim: str, sim: httpx.Client
) -> None:
    """kill -9 of the worker running a session's turn: the sweep re-queues it after the
    lease (3 s here), it runs again, and the turns behind it follow in order."""
    with isolated_stack(llm_sim, infra["redis_url"], workers=1) as stack, stack.client() as c:
        c.put(f"/v1/flows/{FLOW}", json=_export("Memory Chatbot.json"))
        sim.put("/_sim/config", json={"ttft_s": 30.0})
        texts = ["crash one", "crash two", "crash three"]
        ids = [_accepted(_submit(c, text, "crash")) for text in texts]
        assert wait_for_run(c, ids[0], until={"running"})["attempts"] == 1
        deadline = time.monotonic() + 10
        while not sim.get("/_sim/requests").json():  # its LLM call is in flight
            assert time.monotonic() < deadline, "the worker never called the backend"
            time.sleep(0.05)

        stack.workers[0].kill(signal.SIGKILL)
        killed_at = time.monotonic()
        sim.put("/_sim/config", json={"ttft_s": 0.0})
        sim.delete("/_sim/requests")
        stack.workers.append(start_worker(stack.env, "successor"))
        runs = [wait_for_run(c, run_id, timeout=45) for run_id in ids]
        waited = time.monotonic() - killed_at
        print(f"\n[session turn held by a killed worker] blocked {waited:.1f} s")  # noqa: T201

        assert [r["status"] for r in runs] == ["succeeded"] * 3
        assert runs[0]["attempts"] == 2  # taken over after its lease expired
        for before, after in zip(runs, runs[1:], strict=False):
            assert _at(after, "started_at") >= _at(before, "finished_at")
        assert waited < 30, f"the session was blocked {waited:.1f} s after the kill"
        earlier = [(texts[j], runs[j]["output"]["text"]) for j in range(2)]
        assert _system_prompt_for(sim, "crash three") == _template().replace(
            "{memory}", _memory(earlier)
        )
        history = c.get("/v1/sessions/crash/messages").json()["messages"]
        assert [m["content"] for m in history if m["role"] == "user"] == texts
