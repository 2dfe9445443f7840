"""POST /api/v1/responses (LangFlow's OpenAI Responses front door) through the official
openai client, streaming and not, against the real stack with llm-sim as the model."""

from __future__ import annotations

import httpx
import openai
import pytest

from flowfleet.llm_sim import reply_text
from tests.flows.langflow_fixtures import load as _export
from tests.support.stack import Stack

FLOW = "lf-resp-basic"
MEMORY = "lf-resp-memory"


@pytest.fixture(scope="module", autouse=True)
def _flows(stack: Stack) -> None:
    with stack.client() as c:
        for flow_id, name in ((FLOW, "Basic Prompting.json"), (MEMORY, "Memory Chatbot.json")):
            assert c.put(f"/v1/flows/{flow_id}", json=_export(name)).status_code in (200, 201)


@pytest.fixture
def oai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.api.url + "/api/v1", api_key="unused", max_retries=0)


def test_response_carries_the_flow_output_and_usage(
    oai: openai.OpenAI, sim: httpx.Client, client: httpx.Client
) -> None:
    response = oai.responses.create(model=FLOW, input="Tell me about queues")

    (request,) = sim.get("/_sim/requests").json()
    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text == reply_text(request["messages"])
    assert response.usage is not None
    assert response.usage.output_tokens > 0
    # Underneath, an ordinary run in the session the response id names.
    runs = client.get("/v1/runs", params={"flow_id": FLOW}).json()
    items = runs["items"] if isinstance(runs, dict) else runs
    assert any(r["session_id"] == response.id for r in items)


def test_streamed_response_is_typed_events_the_client_assembles(
    oai: openai.OpenAI, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"token_s": 0.01, "tokens": 12})

    events = list(oai.responses.create(model=FLOW, input="stream me", stream=True))

    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1  # streamed as generated, not in one piece
    final = events[-1].response  # type: ignore[union-attr]
    assert "".join(deltas) == final.output_text
    (request,) = sim.get("/_sim/requests").json()
    assert final.output_text.startswith(reply_text(request["messages"]))


def test_stream_helper_gets_the_final_response(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model=FLOW, input="helper") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text
    assert final.output_text.startswith("You said: helper")


def test_previous_response_id_continues_the_conversation(
    oai: openai.OpenAI, sim: httpx.Client
) -> None:
    first = oai.responses.create(model=MEMORY, input="My name is Ada")
    second = oai.responses.create(
        model=MEMORY, input="What is my name?", previous_response_id=first.id
    )

    assert second.id == first.id  # LangFlow's: a conversation keeps its session's id
    system = sim.get("/_sim/requests").json()[-1]["messages"][0]["content"]
    assert f"User: My name is Ada\nAI: {first.output_text}" in system


def test_unknown_flow_and_tools_are_openai_errors(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        oai.responses.create(model="no-such-flow", input="x")
    assert "no-such-flow" in missing.value.message
    with pytest.raises(openai.BadRequestError) as tools:
        oai.responses.create(
            model=FLOW,
            input="x",
            tools=[{"type": "function", "name": "f", "parameters": {}, "strict": False}],
        )
    assert "Tools are not supported" in tools.value.message


def test_failed_run_is_an_error_and_a_failed_stream(oai: openai.OpenAI, sim: httpx.Client) -> None:
    sim.put("/_sim/config", json={"error_rate": 1.0, "error_status": [500]})

    with pytest.raises(openai.APIStatusError) as info:
        oai.responses.create(model=FLOW, input="fail")
    assert info.value.status_code == 502
    events = list(oai.responses.create(model=FLOW, input="fail", stream=True))
    assert events[-1].type == "response.failed"
    assert "500" in (events[-1].response.error.message)  # type: ignore[union-attr]
