"""Each model call of a run is kept on it (run_steps, kind model_call) and shown in order by
GET /v1/runs/{id}/timeline: the messages llm-sim received, the model, the backend's name,
tokens; never the backend's key or address. Off with FLOWFLEET_RECORD_MODEL_CALLS=false;
a failed or cancelled run, or a database that refuses the rows, still ends as it would."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.faults import isolated_stack
from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.sse import iter_sse
from tests.support.stack import Stack, wait_for_run

BASIC_PROMPTING = LANGFLOW_FIXTURES / "Basic Prompting.json"
SIMPLE_AGENT = LANGFLOW_FIXTURES / "starters-1.13.0" / "Simple Agent.json"  # OpenAI wire format
SECRET = "sk-model-calls-secret-5f1e9c"  # the sim backend's key: sent, never recorded
STEP_KINDS = ("model_call", "tool_call", "tool_result")


def _backends(sim_url: str) -> str:
    return json.dumps([{"name": "sim", "base_url": f"{sim_url}/v1", "api_key_env": "SIM_KEY"}])


@pytest.fixture(scope="module")
def keyed(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    """A stack whose backend has a key, recording model calls (the default)."""
    with isolated_stack(
        llm_sim, infra["redis_url"], FLOWFLEET_BACKENDS=_backends(llm_sim), SIM_KEY=SECRET
    ) as stack:
        yield stack


@pytest.fixture
def client(keyed: Stack) -> Iterator[httpx.Client]:
    with keyed.client() as c:
        yield c


def _upload(client: httpx.Client, flow_id: str, path: Path) -> None:
    answer = client.put(f"/v1/flows/{flow_id}", content=path.read_bytes())
    assert answer.status_code in (200, 201), answer.text


def _run(client: httpx.Client, flow_id: str, text: str) -> tuple[str, dict[str, Any]]:
    run_id = client.post(f"/v1/flows/{flow_id}/runs", json={"input": text}).json()["id"]
    return run_id, wait_for_run(client, run_id)


def _steps(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    items = client.get(f"/v1/runs/{run_id}/timeline").json()["items"]
    return [i for i in items if i["kind"] in STEP_KINDS]


def _sent(call: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of each message of an OpenAI request llm-sim received."""
    return [(m["role"], m.get("content") or "") for m in call["body"]["messages"]]


def _recorded(item: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in item["detail"]["messages"]]


def _rows(stack: Stack, run_id: str) -> list[tuple[Any, ...]]:
    """Every column of the run's step rows, as stored."""
    with psycopg.connect(stack.env["FLOWFLEET_DATABASE_URL"]) as conn:
        return conn.execute(
            "SELECT * FROM run_steps WHERE run_id = %s ORDER BY id", [run_id]
        ).fetchall()


def test_basic_prompting_shows_its_model_call_with_what_the_model_received(
    keyed: Stack, client: httpx.Client, sim: httpx.Client
) -> None:
    _upload(client, "basic", BASIC_PROMPTING)
    run_id, run = _run(client, "basic", "What is a model call?")
    assert run["status"] == "succeeded"

    (call,) = sim.get("/_sim/calls").json()
    assert call["headers"]["authorization"] == f"Bearer {SECRET}"  # the key did travel
    (item,) = _steps(client, run_id)
    assert item["kind"] == "model_call"
    assert item["attempt"] == 1
    detail = item["detail"]
    assert item["title"] == f"Model call: {call['body']['model']}"
    assert (detail["model"], detail["backend"], detail["status"]) == (
        call["body"]["model"],
        "sim",
        "success",
    )
    # The system prompt of the flow's Prompt and the user's input, as llm-sim got them.
    assert _recorded(item) == _sent(call)
    roles = [role for role, _ in _sent(call)]
    assert roles == ["system", "user"]
    assert _recorded(item)[1] == ("user", "What is a model call?")
    assert detail["truncated"] is False
    assert detail["response"] == run["output"]["text"]
    assert detail["tokens"]["input"] + detail["tokens"]["output"] == run["usage"]["total_tokens"]
    assert detail["latency_ms"] > 0
    # Stored: nothing of the key, nor of the backend's address.
    stored = json.dumps(_rows(keyed, run_id), default=str)
    assert "model_call" in stored
    assert SECRET not in stored
    assert keyed.sim_url.removeprefix("http://") not in stored
    # /steps keeps to tool steps.
    assert client.get(f"/v1/runs/{run_id}/steps").json()["items"] == []


def test_agent_model_calls_and_tool_steps_in_order_each_with_its_messages(
    keyed: Stack, client: httpx.Client, sim: httpx.Client
) -> None:
    _upload(client, "agent", SIMPLE_AGENT)
    run_id, run = _run(client, "agent", "evaluate_expression: 6*7")
    assert run["status"] == "succeeded"

    steps = _steps(client, run_id)
    assert [s["kind"] for s in steps] == ["model_call", "tool_call", "tool_result", "model_call"]
    first, second = sim.get("/_sim/calls").json()
    assert _recorded(steps[0]) == _sent(first)
    system_role, instructions = _recorded(steps[0])[0]  # the agent's system prompt, whole
    assert system_role == "system"
    assert instructions.startswith("You are a Langflow Agent")
    assert _recorded(steps[0])[-1] == ("user", "evaluate_expression: 6*7")
    # The second call: the same turns, the model's tool call and the tool's answer.
    assert [role for role, _ in _recorded(steps[3])] == ["system", "user", "assistant", "tool"]
    assert _recorded(steps[3])[:2] == _sent(second)[:2]
    assert _recorded(steps[3])[3] == _sent(second)[3]
    assert _recorded(steps[3])[2][1] == '[tool call] evaluate_expression {"expression": "6*7"}'
    assert steps[0]["detail"]["response"].startswith("[tool call] evaluate_expression")
    assert [s["detail"]["backend"] for s in (steps[0], steps[3])] == ["sim", "sim"]
    assert SECRET not in json.dumps(_rows(keyed, run_id), default=str)
    # /steps is unchanged: the tool steps only.
    assert [s["event"] for s in client.get(f"/v1/runs/{run_id}/steps").json()["items"]] == [
        "tool_call",
        "tool_result",
    ]


def test_a_failed_model_call_is_recorded_and_the_run_fails_as_before(
    client: httpx.Client, sim: httpx.Client
) -> None:
    _upload(client, "basic", BASIC_PROMPTING)
    sim.put("/_sim/config", json={"error_rate": 1.0, "error_status": [400]})
    run_id, run = _run(client, "basic", "boom")

    assert run["status"] == "failed"
    (item,) = _steps(client, run_id)
    assert (item["detail"]["status"], item["detail"]["error"]) == ("error", "http_400")
    assert _recorded(item)[-1] == ("user", "boom")
    last = client.get(f"/v1/runs/{run_id}/timeline").json()["items"][-1]
    assert (last["kind"], last["detail"]["code"]) == ("failed", run["error"]["code"])


def test_cancel_during_a_model_call_ends_the_run_cancelled_with_what_came_before(
    client: httpx.Client, sim: httpx.Client
) -> None:
    """Cancelled while the agent's second model call is under way: the run is cancelled, the
    first call and the tool steps are on its timeline, the cut-off call is not."""
    _upload(client, "agent", SIMPLE_AGENT)
    sim.put("/_sim/config", json={"ttft_s": 1.5})
    run_id = client.post(
        "/v1/flows/agent/runs", json={"input": "evaluate_expression 1+1, then get_current_date"}
    ).json()["id"]
    with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
        for event in iter_sse(response):
            if event.event == "tool_result":
                break
    assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 202

    assert wait_for_run(client, run_id)["status"] == "cancelled"
    time.sleep(2)  # a model call still under way would have been recorded by now
    timeline = client.get(f"/v1/runs/{run_id}/timeline").json()["items"]
    steps = [i["kind"] for i in timeline if i["kind"] in STEP_KINDS]
    assert steps == ["model_call", "tool_call", "tool_result"]
    assert timeline[-1]["kind"] == "cancelled"


def test_a_database_refusing_model_call_rows_costs_the_rows_not_the_run(
    keyed: Stack, client: httpx.Client
) -> None:
    """Every model_call insert fails (a constraint added under the worker): the run succeeds
    with its answer and tool steps, the worker logs each lost row."""
    _upload(client, "agent", SIMPLE_AGENT)
    url = keyed.env["FLOWFLEET_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE run_steps ADD CONSTRAINT no_model_calls "
            "CHECK (kind <> 'model_call') NOT VALID"
        )
    try:
        run_id, run = _run(client, "agent", "evaluate_expression: 2+2")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE run_steps DROP CONSTRAINT no_model_calls")

    assert run["status"] == "succeeded"
    assert '{"result": "4"}' in run["output"]["text"]
    assert [s["kind"] for s in _steps(client, run_id)] == ["tool_call", "tool_result"]
    lost = [
        json.loads(line[line.index("{") :])
        for line in keyed.workers[0].output().splitlines()
        if '"run.step_lost"' in line and run_id in line
    ]
    assert [(r["kind"], r["error"]) for r in lost] == [("model_call", "IntegrityError")] * 2


def test_with_recording_off_no_model_call_rows(
    infra: dict[str, str], llm_sim: str, sim: httpx.Client
) -> None:
    with (
        isolated_stack(
            llm_sim,
            infra["redis_url"],
            FLOWFLEET_BACKENDS=_backends(llm_sim),
            SIM_KEY=SECRET,
            FLOWFLEET_RECORD_MODEL_CALLS="false",
        ) as stack,
        stack.client() as c,
    ):
        _upload(c, "agent", SIMPLE_AGENT)
        run_id, run = _run(c, "agent", "evaluate_expression: 6*7")
        assert run["status"] == "succeeded"
        assert len(sim.get("/_sim/calls").json()) == 2  # the model was called twice
        assert [s["kind"] for s in _steps(c, run_id)] == ["tool_call", "tool_result"]
        kinds = {row[3] for row in _rows(stack, run_id)}
        assert kinds == {"tool_call", "tool_result"}
