"""LangFlow's API (/api/v1/run, /api/v1/flows/) driven by LangFlow's own client, langflow-sdk,
as its README shows, against the real stack with llm-sim as the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langflow_sdk import Client
from langflow_sdk.exceptions import LangflowHTTPError, LangflowNotFoundError

from flowfleet.llm_sim import reply_text
from tests.flows.langflow_fixtures import load as _export
from tests.support.stack import Stack

FLOW = "lf-basic"
MEMORY = "lf-memory"


@pytest.fixture(scope="module", autouse=True)
def _flows(stack: Stack) -> None:
    with stack.client() as c:
        for flow_id, name in ((FLOW, "Basic Prompting.json"), (MEMORY, "Memory Chatbot.json")):
            assert c.put(f"/v1/flows/{flow_id}", json=_export(name)).status_code in (200, 201)


@pytest.fixture
def lf(stack: Stack) -> Iterator[Client]:
    with Client(stack.api.url, api_key="unused-with-auth-off") as c:
        yield c


def _template(name: str, node_id: str) -> str:
    node = next(n for n in _export(name)["data"]["nodes"] if n["id"] == node_id)
    return str(node["data"]["node"]["template"]["template"]["value"])


def test_sdk_run_answers_in_langflows_shape_from_an_ordinary_run(
    lf: Client, client: httpx.Client, sim: httpx.Client
) -> None:
    result = lf.run(FLOW, input_value="Tell me about queues")

    (request,) = sim.get("/_sim/requests").json()
    expected = reply_text(request["messages"])
    assert result.first_text_output() == expected
    # As in LangFlow: no session_id means the flow id's session.
    assert result.session_id == FLOW
    raw = client.post(f"/api/v1/run/{FLOW}", json={"input_value": "again"})
    body = raw.json()
    out = body["outputs"][0]
    assert out["inputs"] == {"input_value": "again"}
    data = out["outputs"][0]
    assert data["results"]["message"]["text"] == data["artifacts"]["message"]
    assert data["results"]["message"]["sender"] == "Machine"
    assert data["component_id"] == "ChatOutput-8ZWWB"
    assert data["messages"][0]["message"] == data["results"]["message"]["text"]
    # Underneath it is an ordinary run: recorded, findable by the header's id.
    run = client.get(f"/v1/runs/{raw.headers['X-Flowfleet-Run-Id']}").json()
    assert run["status"] == "succeeded"
    assert run["flow_id"] == FLOW
    assert run["output"]["text"] == data["results"]["message"]["text"]


def test_sdk_stream_yields_tokens_then_end_with_the_whole_response(
    lf: Client, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"token_s": 0.01, "tokens": 12})

    chunks = list(lf.stream(FLOW, input_value="stream me"))

    events = [c.event for c in chunks]
    assert events[0] == "add_message"
    assert events[-1] == "end"
    tokens = [c.text or "" for c in chunks if c.is_token]
    # The export has its model's streaming off; LangFlow's stream turns it on, so do we.
    assert len(tokens) > 1
    final = chunks[-1].final_response()
    assert final is not None
    assert "".join(tokens) == final.first_text_output()
    (request,) = sim.get("/_sim/requests").json()
    assert request["stream"] is True
    assert final.first_text_output().startswith(reply_text(request["messages"]))  # type: ignore[union-attr]


def test_query_stream_true_is_langflows_line_format(client: httpx.Client) -> None:
    """LangFlow streams one JSON object per event, each followed by a blank line."""
    with client.stream(
        "POST", f"/api/v1/run/{FLOW}?stream=true", json={"input_value": "lines"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    blocks = [b for b in text.split("\n\n") if b]
    parsed = [json.loads(b) for b in blocks]
    assert all(set(p) == {"event", "data"} for p in parsed)
    assert parsed[0]["data"]["sender"] == "User"
    assert parsed[0]["data"]["text"] == "lines"
    end = parsed[-1]
    assert end["event"] == "end"
    answer = end["data"]["result"]["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    assert answer.startswith("You said: lines")


def test_sdk_tweaks_reach_the_component(lf: Client, sim: httpx.Client) -> None:
    lf.run(FLOW, input_value="hi", tweaks={"Prompt-tOH5D": {"template": "Talk like a pirate."}})

    (request,) = sim.get("/_sim/requests").json()
    assert request["messages"][0] == {"role": "system", "content": "Talk like a pirate."}


def test_unknown_tweak_is_refused_before_anything_runs(lf: Client, sim: httpx.Client) -> None:
    with pytest.raises(LangflowHTTPError) as info:
        lf.run(FLOW, input_value="x", tweaks={"Nope-1": {"template": "x"}})
    assert info.value.status_code == 422
    assert "Nope-1" in str(info.value)
    assert sim.get("/_sim/requests").json() == []


def test_session_id_carries_the_conversation(client: httpx.Client, sim: httpx.Client) -> None:
    """The request LangFlow's docs show (langflow-sdk's RunRequest has no session_id)."""
    url = f"/api/v1/run/{MEMORY}"
    first = client.post(url, json={"input_value": "My name is Ada", "session_id": "lf-s1"})
    second = client.post(url, json={"input_value": "What is my name?", "session_id": "lf-s1"})

    assert first.status_code == second.status_code == 200
    assert second.json()["session_id"] == "lf-s1"
    answer = first.json()["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    system = sim.get("/_sim/requests").json()[-1]["messages"][0]["content"]
    memory = f"User: My name is Ada\nAI: {answer}"
    assert system == _template("Memory Chatbot.json", "Prompt-9wc4j").replace("{memory}", memory)


def test_sdk_lists_flows_and_runs_one_by_its_listed_uuid(lf: Client) -> None:
    flows = {f.endpoint_name: f for f in lf.list_flows()}

    assert FLOW in flows
    listed = flows[FLOW]
    assert lf.get_flow(listed.id).endpoint_name == FLOW
    by_uuid = lf.run(str(listed.id), input_value="by uuid")
    assert (by_uuid.first_text_output() or "").startswith("You said: by uuid")


def test_unknown_flow_is_not_found(lf: Client) -> None:
    with pytest.raises(LangflowNotFoundError) as info:
        lf.run("no-such-flow", input_value="x")
    assert "Flow not found" in str(info.value)


def test_failed_run_is_a_500_with_its_reason(lf: Client, sim: httpx.Client) -> None:
    sim.put("/_sim/config", json={"error_rate": 1.0, "error_status": [500]})

    with pytest.raises(LangflowHTTPError) as info:
        lf.run(FLOW, input_value="fail")
    assert info.value.status_code == 500
    assert "500" in str(info.value)


def test_failed_stream_ends_with_an_error_event(lf: Client, sim: httpx.Client) -> None:
    sim.put("/_sim/config", json={"error_rate": 1.0, "error_status": [500]})

    chunks = list(lf.stream(FLOW, input_value="fail"))

    assert chunks[-1].is_error
    assert "500" in str(chunks[-1].data.get("error"))


def test_python_flow_answers_as_its_chat_output(client: httpx.Client) -> None:
    body: dict[str, Any] = client.post("/api/v1/run/prompt", json={"input_value": "py"}).json()
    text = body["outputs"][0]["outputs"][0]["results"]["message"]["text"]
    assert text.startswith("You said: py")


@pytest.mark.parametrize(
    "path",
    [f"/api/v1/run/{FLOW}", "/api/v1/responses", "/api/v2/workflows", "/api/v2/workflows/stop"],
)
def test_a_50000_deep_or_malformed_body_is_4xx(client: httpx.Client, path: str) -> None:
    deep = b'{"input_value": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    for body in (deep, b"{not json", b'{"input_value": "a\\u0000b"}'):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (body[:20], response.text)
        assert "Traceback" not in response.text
