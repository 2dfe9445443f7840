"""LangFlow exports uploaded raw, validated, and run through the queue against llm-sim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from flowfleet.llm_sim import reply_text
from tests.flows.langflow_fixtures import load as _export
from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.stack import Stack, wait_for_run

FIXTURE_IDS = {
    "Basic Prompting.json": "basic-prompting",
    "Basic Prompt Chaining.json": "basic-prompt-chaining",
    "Memory Chatbot.json": "memory-chatbot",
    "Twitter Thread Generator.json": "twitter-thread-generator",
    "Basic Prompting (OpenAIModel).json": "basic-prompting-openaimodel",
}


def _template(flow: dict[str, Any], node_id: str) -> str:
    node = next(n for n in flow["data"]["nodes"] if n["id"] == node_id)
    return str(node["data"]["node"]["template"]["template"]["value"])


def _roles(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in request["messages"]]


def _run(client: httpx.Client, flow_id: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/v1/flows/{flow_id}/runs", json=body)
    assert response.status_code == 202, response.text
    return wait_for_run(client, response.json()["id"])


@pytest.mark.parametrize("name", list(FIXTURE_IDS))
def test_every_fixture_uploads_raw_and_runs(
    client: httpx.Client, sim: httpx.Client, name: str
) -> None:
    flow_id = FIXTURE_IDS[name]
    client.delete(f"/v1/flows/{flow_id}")
    upload = client.put(
        f"/v1/flows/{flow_id}",
        content=(LANGFLOW_FIXTURES / name).read_bytes(),
        headers={"content-type": "application/json"},
    )
    assert upload.status_code == 201, upload.text
    described = client.get(f"/v1/flows/{flow_id}").json()
    assert described["kind"] == "langflow"
    assert described["version"] == upload.json()["version"]

    done = _run(client, flow_id, input="Tell me about queues")

    assert done["status"] == "succeeded", done
    assert done["flow_version"] == described["version"]
    last_call = sim.get("/_sim/requests").json()[-1]
    assert done["output"]["text"] == reply_text(last_call["messages"])


def test_basic_prompting_backend_receives_system_then_user(
    client: httpx.Client, sim: httpx.Client
) -> None:
    flow = _export("Basic Prompting.json")
    client.put("/v1/flows/basic-prompting", json=flow)
    done = _run(client, "basic-prompting", input="What is RAG?")

    (request,) = sim.get("/_sim/requests").json()
    assert _roles(request) == [
        ("system", _template(flow, "Prompt-tOH5D")),
        ("user", "What is RAG?"),
    ]
    assert done["output"]["outputs"] == {"ChatOutput-8ZWWB": done["output"]["text"]}


def test_prompt_chaining_calls_in_order(client: httpx.Client, sim: httpx.Client) -> None:
    flow = _export("Basic Prompt Chaining.json")
    client.put("/v1/flows/basic-prompt-chaining", json=flow)
    done = _run(client, "basic-prompt-chaining", input="an idea")

    first, second, third = sim.get("/_sim/requests").json()
    assert _roles(first) == [("system", _template(flow, "Prompt-RcCgD")), ("user", "an idea")]
    assert _roles(second)[1] == ("user", reply_text(first["messages"]))
    assert _roles(third)[1] == ("user", reply_text(second["messages"]))
    assert done["output"]["text"] == reply_text(third["messages"])


def test_memory_chatbot_second_turn_sees_first_turn(
    client: httpx.Client, sim: httpx.Client
) -> None:
    flow = _export("Memory Chatbot.json")
    client.put("/v1/flows/memory-chatbot", json=flow)
    first = _run(client, "memory-chatbot", input="My name is Ada", session_id="lf-mem")
    _run(client, "memory-chatbot", input="What is my name?", session_id="lf-mem")

    second_call = sim.get("/_sim/requests").json()[-1]
    memory = f"User: My name is Ada\nAI: {first['output']['text']}"
    expected_system = _template(flow, "Prompt-9wc4j").replace("{memory}", memory)
    assert _roles(second_call) == [("system", expected_system), ("user", "What is my name?")]
    history = client.get("/v1/sessions/lf-mem/messages").json()["messages"]
    assert len(history) == 4  # one user and one assistant message per run, stored once


def test_tweaks_apply_per_run_and_unknown_ones_are_422(
    client: httpx.Client, sim: httpx.Client
) -> None:
    client.put("/v1/flows/basic-prompting", json=_export("Basic Prompting.json"))
    tweaked = {"Prompt-tOH5D": {"template": "Answer like a pirate."}}
    _run(client, "basic-prompting", input="hi", tweaks=tweaked)
    (request,) = sim.get("/_sim/requests").json()
    assert request["messages"][0] == {"role": "system", "content": "Answer like a pirate."}

    for tweaks, named in (
        ({"Nope-123": {"template": "x"}}, "Nope-123"),
        ({"Prompt-tOH5D": {"no_such_field": 1}}, "no_such_field"),
    ):
        response = client.post(
            "/v1/flows/basic-prompting/runs", json={"input": "x", "tweaks": tweaks}
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_request"
        assert named in response.json()["detail"]


def test_model_streams_only_when_its_stream_field_is_on(
    client: httpx.Client, sim: httpx.Client, stack: Stack
) -> None:
    """As in LangFlow: the export's `stream: false` makes one complete call (no token
    events); a tweak turning `stream` on streams that run's tokens."""
    client.put("/v1/flows/basic-prompting", json=_export("Basic Prompting.json"))
    plain = _run(client, "basic-prompting", input="no stream")
    tweak = {"LanguageModelComponent-kBOja": {"stream": True}}
    streamed = _run(client, "basic-prompting", input="stream", tweaks=tweak)

    first, second = sim.get("/_sim/requests").json()
    assert not first.get("stream")
    assert second["stream"] is True
    r = redis.Redis.from_url(stack.env["FLOWFLEET_REDIS_URL"])
    try:
        kinds = {
            run["id"]: [
                fields[b"event"]
                for _, fields in r.xrange(
                    f"{stack.env['FLOWFLEET_REDIS_NAMESPACE']}run:{run['id']}:events"
                )
            ]
            for run in (plain, streamed)
        }
    finally:
        r.close()
    assert plain["status"] == streamed["status"] == "succeeded", streamed.get("error")
    assert plain["output"]["text"] == reply_text(first["messages"])
    assert kinds[plain["id"]].count(b"token") == 0
    assert kinds[streamed["id"]].count(b"token") > 0


def test_edited_or_unknown_node_is_rejected_naming_it(client: httpx.Client) -> None:
    flow = _export("Basic Prompting.json")
    node = next(n for n in flow["data"]["nodes"] if n["id"] == "Prompt-tOH5D")
    node["data"]["node"]["edited"] = True
    node["data"]["node"]["template"]["code"]["value"] = "import os; os.system('touch /tmp/pwned')"
    other = next(n for n in flow["data"]["nodes"] if n["id"] == "ChatOutput-8ZWWB")
    other["data"]["type"] = "MysteryComponent"

    response = client.put("/v1/flows/tampered", json=flow)

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_flow"
    named = {p["node_id"] for p in problem["problems"]}
    assert {"Prompt-tOH5D", "ChatOutput-8ZWWB"} <= named
    assert client.get("/v1/flows/tampered").status_code == 404


def test_second_run_of_a_version_uses_the_compiled_cache(
    stack: Stack, client: httpx.Client
) -> None:
    flow = _export("Basic Prompting.json")
    flow["description"] = "cache probe"  # a version of its own, compiled for the first time here
    client.put("/v1/flows/cache-probe", json=flow)
    first = _run(client, "cache-probe", input="one")
    second = _run(client, "cache-probe", input="two")

    log = stack.workers[0].output()
    by_run = {
        entry["run_id"]: entry["flow_cache"]
        for entry in (json.loads(line) for line in log.splitlines() if line.startswith("{"))
        if entry.get("event") == "run.finished"
    }
    assert by_run[first["id"]] == "compiled"
    assert by_run[second["id"]] == "hit"


def test_updated_flow_gets_a_new_version_and_old_runs_keep_theirs(client: httpx.Client) -> None:
    flow = _export("Basic Prompting.json")
    v1 = client.put("/v1/flows/versioned", json=flow).json()["version"]
    first = _run(client, "versioned", input="x")
    flow["description"] = "changed"
    v2 = client.put("/v1/flows/versioned", json=flow)
    assert v2.status_code == 200
    second = _run(client, "versioned", input="x")

    assert v1 != v2.json()["version"]
    assert first["flow_version"] == v1
    assert second["flow_version"] == v2.json()["version"]


def test_flow_without_input_node_says_it_ignores_input(
    client: httpx.Client, tmp_path: Path
) -> None:
    flow = _export("Basic Prompting.json")
    flow["data"]["nodes"] = [n for n in flow["data"]["nodes"] if n["id"] != "ChatInput-SzjnT"]
    flow["data"]["edges"] = [e for e in flow["data"]["edges"] if e["source"] != "ChatInput-SzjnT"]
    upload = client.put("/v1/flows/no-input", json=flow)
    assert upload.status_code == 201, upload.text
    described = client.get("/v1/flows/no-input").json()
    assert described["uses_input"] is False
    assert "input" in described["description"].lower()
