"""Model nodes of every provider and the keys they send, end to end: API, queue, worker, llm-sim.

The session stack configures one OpenAI-compatible backend (llm-sim); Anthropic and Google
nodes have none, so in the embedded default they reach llm-sim in their own wire format.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import redis

from flowfleet.llm_sim import reply_text
from flowfleet.llm_sim_wire import anthropic_messages, gemini_messages
from tests.flows.langflow_fixtures import load, node_of
from tests.support.stack import WEBHOOK_SECRET, Stack, wait_for_run

QUESTION = "What is RAG?"


def _run(client: httpx.Client, flow_id: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/v1/flows/{flow_id}/runs", json=body)
    assert response.status_code == 202, response.text
    return wait_for_run(client, response.json()["id"])


def _provider_flow(provider: str, model_name: str) -> tuple[dict[str, Any], str]:
    flow = load("Basic Prompting.json")
    model = node_of(flow, "LanguageModelComponent")
    template = model["data"]["node"]["template"]
    template["provider"]["value"] = provider
    template["model_name"]["value"] = model_name
    prompt = node_of(flow, "Prompt")["data"]["node"]["template"]["template"]["value"]
    return flow, prompt


@pytest.mark.parametrize(
    ("provider", "model_name", "api", "to_messages"),
    [
        ("Anthropic", "claude-3-5-haiku-latest", "anthropic", anthropic_messages),
        ("Google Generative AI", "gemini-2.0-flash", "gemini", gemini_messages),
    ],
    ids=["anthropic", "google"],
)
def test_provider_model_node_runs_in_its_wire_format(
    client: httpx.Client,
    sim: httpx.Client,
    provider: str,
    model_name: str,
    api: str,
    to_messages: Any,
) -> None:
    flow, prompt = _provider_flow(provider, model_name)
    flow_id = f"provider-{api}"
    assert client.put(f"/v1/flows/{flow_id}", json=flow).status_code in (200, 201)

    done = _run(client, flow_id, input=QUESTION)

    assert done["status"] == "succeeded", done
    calls = sim.get("/_sim/calls").json()
    # One call; a transient failure before any reply (a stale pooled connection) may add a
    # retry of the same request, as on the OpenAI path.
    assert {c["api"] for c in calls} == {api}
    call = calls[-1]
    body = call["body"]
    if api == "anthropic":
        assert call["path"] == "/v1/messages"
        assert body["model"] == model_name
        assert "messages" in body
        assert body["system"]
    else:
        assert call["path"].endswith(f"/models/{model_name}:generateContent")
        assert body["contents"][-1]["role"] == "user"
    # The conversation LangFlow sends: the prompt as system, the input as the user turn.
    assert [(m["role"], m["content"]) for m in to_messages(body)] == [
        ("system", prompt),
        ("user", QUESTION),
    ]
    assert done["output"]["text"] == reply_text(to_messages(body))
    # Usage accounting as on the OpenAI path: the tokens llm-sim reported, by model.
    assert done["usage"]["input_tokens"] > 0
    assert done["usage"]["output_tokens"] > 0
    assert model_name in done["usage"]["by_model"]


def _tokens(stack: Stack, run_id: str) -> list[str]:
    r = redis.Redis.from_url(stack.env["FLOWFLEET_REDIS_URL"])
    try:
        key = f"{stack.env['FLOWFLEET_REDIS_NAMESPACE']}run:{run_id}:events"
        return [
            json.loads(fields[b"data"])["text"]
            for _, fields in r.xrange(key)
            if fields[b"event"] == b"token"
        ]
    finally:
        r.close()


@pytest.mark.parametrize(
    ("provider", "api", "to_messages"),
    [("Anthropic", "anthropic", anthropic_messages), ("Google", "gemini", gemini_messages)],
    ids=["anthropic", "google"],
)
def test_provider_model_node_streams_tokens_when_asked(
    client: httpx.Client, sim: httpx.Client, stack: Stack, provider: str, api: str, to_messages: Any
) -> None:
    """The node's `stream` on (a tweak, as in LangFlow): the call streams in the provider's
    format and each token is a run event, as on the OpenAI path."""
    flow, _ = _provider_flow(provider, "m-1")
    flow_id = f"provider-stream-{api}"
    assert client.put(f"/v1/flows/{flow_id}", json=flow).status_code in (200, 201)
    node = node_of(flow, "LanguageModelComponent")["id"]

    done = _run(client, flow_id, input=QUESTION, tweaks={node: {"stream": True}})

    assert done["status"] == "succeeded", done
    calls = sim.get("/_sim/calls").json()
    assert {c["api"] for c in calls} == {api}  # a retry before any token may add one
    call = calls[-1]
    if api == "anthropic":
        assert call["body"]["stream"] is True
    else:
        assert call["path"].endswith(":streamGenerateContent")
    expected = reply_text(to_messages(call["body"]))
    assert done["output"]["text"] == expected
    tokens = _tokens(stack, done["id"])
    assert tokens  # tokens that arrive together may share an event
    assert "".join(tokens) == expected


def test_a_flow_cannot_choose_the_key_sent(client: httpx.Client, sim: httpx.Client) -> None:
    """A model node whose api_key names FLOWFLEET_WEBHOOK_SECRET (load_from_db) runs with the
    backend's own key: the webhook secret never reaches llm-sim."""
    flow = load("Basic Prompting (OpenAIModel).json")
    model = node_of(flow, "OpenAIModel")
    model["data"]["node"]["template"]["api_key"].update(
        value="FLOWFLEET_WEBHOOK_SECRET", load_from_db=True
    )
    assert client.put("/v1/flows/steal-secret", json=flow).status_code in (200, 201)

    done = _run(client, "steal-secret", input="hi")

    assert done["status"] == "succeeded", done
    (call,) = sim.get("/_sim/calls").json()
    assert call["headers"]["authorization"] == "Bearer not-set"  # the sim backend has no key
    assert all(WEBHOOK_SECRET not in value for value in call["headers"].values())


@pytest.mark.parametrize(
    "field", ["openai_api_base", "model_name", "timeout", "api_key"], ids=lambda f: f
)
def test_model_connection_tweaks_are_refused_at_submit(
    client: httpx.Client, sim: httpx.Client, field: str
) -> None:
    """Where a call goes, with which key, for how long: not a client's choice (422)."""
    flow = load("Basic Prompting (OpenAIModel).json")
    assert client.put("/v1/flows/no-redirect", json=flow).status_code in (200, 201)
    value: Any = {"timeout": 1, "model_name": "gpt-evil"}.get(field, "http://127.0.0.1:9/v1")
    response = client.post(
        "/v1/flows/no-redirect/runs",
        json={"input": "x", "tweaks": {"OpenAIModel-OcXkl": {field: value}}},
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert f"OpenAIModel-OcXkl.{field}" in problem["detail"]
    assert sim.get("/_sim/calls").json() == []
