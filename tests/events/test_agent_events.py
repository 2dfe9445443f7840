"""An agent run through the queue: its tool calls and results are SSE events in order,
resumable by Last-Event-ID, kept on the run (GET /v1/runs/{id}/steps), and cancel stops it
between steps."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.support.faults import finishes, isolated_stack
from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.sse import iter_sse, read_events
from tests.support.stack import start_worker, wait_for_run

SIMPLE_AGENT_184 = LANGFLOW_FIXTURES / "starters-1.8.4" / "Simple Agent.json"


SIMPLE_AGENT_113 = LANGFLOW_FIXTURES / "starters-1.13.0" / "Simple Agent.json"
POKEDEX_AGENT_184 = LANGFLOW_FIXTURES / "starters-1.8.4" / "Pokédex Agent.json"
# The tools each Simple Agent offers, as LangFlow names them, in the order offered.
OFFERED = {
    SIMPLE_AGENT_184: ["evaluate_expression", "fetch_content", "get_current_date"],
    SIMPLE_AGENT_113: [
        "fetch_content",
        "perform_search",
        "get_current_date",
        "evaluate_expression",
    ],
}


def _upload(client: httpx.Client, flow_id: str, path: Path = SIMPLE_AGENT_184) -> None:
    answer = client.put(f"/v1/flows/{flow_id}", content=path.read_bytes())
    assert answer.status_code in (200, 201), answer.text


@pytest.mark.parametrize("path", [SIMPLE_AGENT_184, SIMPLE_AGENT_113], ids=["1.8.4", "1.13.0"])
def test_simple_agent_sse_shows_the_tool_call_then_its_result(
    client: httpx.Client, sim: httpx.Client, path: Path
) -> None:
    """The unmodified Simple Agent starter runs through the queue: SSE shows tool_call, then
    tool_result, then the output; llm-sim received the two tool-calling requests; the steps
    are kept on the run; a reader resuming after the tool_call gets the rest."""
    flow_id = f"simple-agent-{path.parent.name.removeprefix('starters-').replace('.', '-')}"
    _upload(client, flow_id, path)
    run_id = client.post(
        f"/v1/flows/{flow_id}/runs", json={"input": "evaluate_expression: 6*7"}
    ).json()["id"]
    events = read_events(client, run_id)
    kinds = [e.event for e in events if e.event != "token"]
    assert kinds == ["status", "tool_call", "tool_result", "output", "done"], kinds
    call = next(e for e in events if e.event == "tool_call")
    result = next(e for e in events if e.event == "tool_result")
    assert call.data["name"] == "evaluate_expression"
    assert call.data["args"] == {"expression": "6*7"}
    assert result.data["id"] == call.data["id"]
    assert result.data["status"] == "success"
    assert json.loads(result.data["result"]) == {"result": "42"}

    first, second = sim.get("/_sim/requests").json()
    assert [t["function"]["name"] for t in first["tools"]] == OFFERED[path]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][3]["tool_call_id"] == call.data["id"]
    run = client.get(f"/v1/runs/{run_id}").json()
    assert run["status"] == "succeeded"
    assert run["output"]["text"].startswith('Tool results: evaluate_expression: {"result": "42"}')

    steps = client.get(f"/v1/runs/{run_id}/steps").json()
    assert [(s["event"], s["name"], s["attempt"]) for s in steps["items"]] == [
        ("tool_call", "evaluate_expression", 1),
        ("tool_result", "evaluate_expression", 1),
    ]
    assert steps["items"][0]["args"] == {"expression": "6*7"}
    assert json.loads(steps["items"][1]["result"]) == {"result": "42"}

    resumed = read_events(client, run_id, last_event_id=call.id)
    assert [e.event for e in resumed if e.event != "token"] == ["tool_result", "output", "done"]


@pytest.mark.parametrize(
    ("path", "question"),
    [
        (POKEDEX_AGENT_184, "make_api_request http://10.0.0.7/admin"),
        (SIMPLE_AGENT_184, "fetch_content http://169.254.169.254/latest/meta-data/"),
    ],
    ids=["api-request-private", "url-metadata"],
)
def test_agent_tools_cannot_reach_private_or_metadata_addresses(
    client: httpx.Client, sim: httpx.Client, path: Path, question: str
) -> None:
    """A tool asked for a private or cloud-metadata address is refused by the egress policy:
    the tool_result event is an error naming the refusal, the model reads it, the run ends."""
    flow_id = f"egress-{path.stem.lower().replace(' ', '-').replace('é', 'e')}"
    _upload(client, flow_id, path)
    run_id = client.post(f"/v1/flows/{flow_id}/runs", json={"input": question}).json()["id"]
    events = read_events(client, run_id)
    result = next(e for e in events if e.event == "tool_result")
    assert result.data["status"] == "error"
    assert "refused" in result.data["result"] or "not allowed" in result.data["result"]
    told = sim.get("/_sim/requests").json()[-1]["messages"][-1]
    assert told["role"] == "tool"
    assert told["content"] == result.data["result"]
    assert wait_for_run(client, run_id)["status"] == "succeeded"


def test_steps_of_an_unknown_run_are_404(client: httpx.Client) -> None:
    """A run that does not exist (or is another owner's) has no steps to show."""
    answer = client.get("/v1/runs/00000000-0000-0000-0000-000000000000/steps")
    assert answer.status_code == 404
    assert answer.json()["code"] == "run_not_found"


def test_cancel_mid_agent_stops_before_the_next_tool(
    client: httpx.Client, sim: httpx.Client
) -> None:
    """Cancelled after its first tool result, while the model thinks about the next step, the
    agent stops: no second tool call, run cancelled, nothing more asked of the model."""
    _upload(client, "simple-agent-cancel")
    sim.put("/_sim/config", json={"ttft_s": 1.5})
    run_id = client.post(
        "/v1/flows/simple-agent-cancel/runs",
        json={"input": "evaluate_expression 1+1, then get_current_date"},
    ).json()["id"]
    seen: list[str] = []
    with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
        events = iter_sse(response)
        for event in events:
            seen.append(event.event)
            if event.event == "tool_result":
                break
        answer = client.post(f"/v1/runs/{run_id}/cancel")
        assert answer.status_code == 202
        for event in events:
            seen.append(event.event)
            if event.event == "done":
                assert event.data == {"status": "cancelled"}
                break
    assert seen.count("tool_call") == 1, seen
    run = wait_for_run(client, run_id)
    assert run["status"] == "cancelled"
    time.sleep(2)  # a model call still under way would have been recorded by now
    assert len(sim.get("/_sim/requests").json()) <= 2
    steps = client.get(f"/v1/runs/{run_id}/steps").json()["items"]
    assert [s["event"] for s in steps] == ["tool_call", "tool_result"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill_9_mid_agent_completes_exactly_once(
    infra: dict[str, str], llm_sim: str, sim: httpx.Client
) -> None:
    """kill -9 of the worker between an agent's tool result and its next model call: another
    worker takes the run over and finishes it once (one result, one pair of session messages);
    the steps show both attempts' tool calls, since tools run at least once."""
    sim.put("/_sim/config", json={"ttft_s": 1.5})
    with (
        isolated_stack(llm_sim, infra["redis_url"], FLOWFLEET_VISIBILITY_TIMEOUT_S="10") as stack,
        stack.client() as c,
    ):
        _upload(c, "simple-agent-kill")
        run_id = c.post(
            "/v1/flows/simple-agent-kill/runs",
            json={"input": "evaluate_expression 2+3 then get_current_date", "session_id": "k9"},
        ).json()["id"]
        with c.stream("GET", f"/v1/runs/{run_id}/events") as response:
            for event in iter_sse(response):
                if event.event == "tool_result":
                    break
        stack.workers[0].kill()  # SIGKILL while the model is asked for the next step
        stack.workers.append(start_worker(stack.env, "successor"))
        run = wait_for_run(c, run_id, timeout=120)
        steps = c.get(f"/v1/runs/{run_id}/steps").json()["items"]
        messages = c.get("/v1/sessions/k9/messages").json()["messages"]
        recorded = finishes(stack.workers)
    assert run["status"] == "succeeded"
    assert run["attempts"] == 2
    assert recorded[run_id] == 1
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert ("tool_call", "evaluate_expression", 1) in [
        (s["event"], s["name"], s["attempt"]) for s in steps
    ]
    second = [(s["event"], s["name"]) for s in steps if s["attempt"] == 2]
    assert second == [
        ("tool_call", "evaluate_expression"),
        ("tool_result", "evaluate_expression"),
        ("tool_call", "get_current_date"),
        ("tool_result", "get_current_date"),
    ]
    assert "get_current_date: Current date and time in UTC" in run["output"]["text"]
