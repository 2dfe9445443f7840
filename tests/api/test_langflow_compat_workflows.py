"""LangFlow's v2 Workflow API (POST /api/v2/workflows sync, stream, background; status; stop)
as LangFlow's docs call it, over ordinary runs, with llm-sim as the model."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from flowfleet.llm_sim import reply_text
from tests.flows.langflow_fixtures import load as _export
from tests.support.stack import Stack

FLOW = "lf-wf-basic"
CHAT_IN = "ChatInput-SzjnT"


@pytest.fixture(scope="module", autouse=True)
def _flows(stack: Stack) -> None:
    with stack.client() as c:
        assert c.put(f"/v1/flows/{FLOW}", json=_export("Basic Prompting.json")).status_code in (
            200,
            201,
        )


def _status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get("/api/v2/workflows", params={"job_id": job_id})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _until(client: httpx.Client, job_id: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (job := _status(client, job_id))["status"] not in statuses:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


def test_sync_runs_flat_inputs_and_answers_per_component(
    client: httpx.Client, sim: httpx.Client
) -> None:
    inputs = {
        f"{CHAT_IN}.input_value": "Hello workflows",
        f"{CHAT_IN}.session_id": "wf-s1",
        "Prompt-tOH5D.template": "Answer in French.",
    }
    response = client.post("/api/v2/workflows", json={"flow_id": FLOW, "inputs": inputs})

    assert response.status_code == 200, response.text
    body = response.json()
    (request,) = sim.get("/_sim/requests").json()
    assert request["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello workflows"},
    ]
    assert body["object"] == "response"
    assert body["status"] == "completed"
    assert body["inputs"] == inputs
    assert body["outputs"]["ChatOutput-8ZWWB"]["content"] == reply_text(request["messages"])
    run = client.get(f"/v1/runs/{body['job_id']}").json()
    assert run["session_id"] == "wf-s1"
    assert run["tweaks"]["Prompt-tOH5D"] == {"template": "Answer in French."}


def test_background_job_is_polled_to_completion(client: httpx.Client) -> None:
    started = client.post(
        "/api/v2/workflows",
        json={"flow_id": FLOW, "background": True, "inputs": {f"{CHAT_IN}.input_value": "bg"}},
    ).json()

    assert started["object"] == "job"
    assert started["status"] == "queued"
    assert started["links"]["status"] == f"/api/v2/workflows?job_id={started['job_id']}"
    done = _until(client, started["job_id"], {"completed", "failed"})
    assert done["status"] == "completed"
    assert done["outputs"]["ChatOutput-8ZWWB"]["content"].startswith("You said: bg")


def test_stop_cancels_a_running_job(client: httpx.Client, sim: httpx.Client) -> None:
    sim.put("/_sim/config", json={"ttft_s": 20})
    job = client.post(
        "/api/v2/workflows",
        json={"flow_id": FLOW, "background": True, "inputs": {f"{CHAT_IN}.input_value": "slow"}},
    ).json()
    _until(client, job["job_id"], {"in_progress"})

    stopped = client.post("/api/v2/workflows/stop", json={"job_id": job["job_id"]})

    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["job_id"] == job["job_id"]
    assert _until(client, job["job_id"], {"cancelled", "completed", "failed"})["status"] == (
        "cancelled"
    )
    again = client.post("/api/v2/workflows/stop", json={"job_id": job["job_id"]})
    assert again.status_code == 409


def test_stream_is_workflow_events_ending_with_the_result(
    client: httpx.Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"token_s": 0.01, "tokens": 10})
    body = {"flow_id": FLOW, "stream": True, "inputs": {f"{CHAT_IN}.input_value": "wf stream"}}
    with client.stream("POST", "/api/v2/workflows", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())

    events = [
        json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")
    ]
    assert {"type", "run_id", "timestamp", "raw_event"} <= set(events[0])
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "end"
    tokens = "".join(e["raw_event"]["chunk"] for e in events if e["type"] == "token")
    result = events[-1]["raw_event"]["result"]
    assert tokens == result["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    assert kinds.count("token") > 1


def test_bad_requests_are_refused(client: httpx.Client) -> None:
    unknown_field = client.post("/api/v2/workflows", json={"flow_id": FLOW, "nope": 1})
    bad_key = client.post("/api/v2/workflows", json={"flow_id": FLOW, "inputs": {"x": 1}})
    missing = client.post("/api/v2/workflows", json={"flow_id": "no-such-flow"})
    no_job = client.get("/api/v2/workflows", params={"job_id": "no-such-job"})

    assert unknown_field.status_code == 422  # LangFlow's request forbids other fields
    assert bad_key.status_code == 422
    assert "component_id.param_name" in bad_key.json()["detail"]
    assert missing.status_code == 404
    assert no_job.status_code == 404
