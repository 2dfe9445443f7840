"""One starter (or starter-built flow) per component family added for LangFlow 1.8-1.13
coverage, uploaded raw and run through the queue on the stack (API, worker, PostgreSQL,
Redis, llm-sim), with the exact requests llm-sim received; and the refusals as 422s."""

from __future__ import annotations

from typing import Any

import httpx

from flowfleet.llm_sim import reply_text
from flows.langflow.components import as_text
from tests.flows.conftest import sim_requests
from tests.flows.coverage_nodes import (
    loop_starter,
    model_field,
    node,
    rows_edges,
    rows_source,
    starter,
    with_kind,
)
from tests.flows.langflow_nodes import edge
from tests.support.stack import wait_for_run


def _run(client: httpx.Client, flow_id: str, flow: dict[str, Any], **body: Any) -> dict[str, Any]:
    upload = client.put(f"/v1/flows/{flow_id}", json=flow)
    assert upload.status_code in (200, 201), upload.text
    response = client.post(f"/v1/flows/{flow_id}/runs", json=body)
    assert response.status_code == 202, response.text
    done = wait_for_run(client, response.json()["id"])
    assert done["status"] == "succeeded", done
    return done


def _roles(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in request["messages"]]


def _node(flow: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(n for n in flow["data"]["nodes"] if n["data"].get("type") == kind)


def test_1_13_basic_prompting_with_an_unset_model_uses_the_default(
    client: httpx.Client, sim: str
) -> None:
    """LangFlow 1.13 exports the model field empty (delegate mode): the default model."""
    flow = starter("1.13.0", "Basic Prompting.json")
    done = _run(client, "cov-basic-1-13", flow, input="What is RAG?")
    (request,) = sim_requests(sim)
    prompt = _node(flow, "Prompt")["data"]["node"]["template"]["template"]["value"]
    assert _roles(request) == [("system", prompt), ("user", "What is RAG?")]
    assert request["model"] == "default"
    assert done["output"]["text"] == reply_text(request["messages"])


def test_1_8_structured_output_with_its_model_field(client: httpx.Client, sim: str) -> None:
    """Financial Report Parser (1.8.4): Structured Output asks its own model (the model
    field names Anthropic's claude-opus-4-5) with a forced tool call; the Parser renders it."""
    flow = starter("1.8.4", "Financial Report Parser.json")
    structured = _node(flow, "StructuredOutput")["data"]["node"]["template"]
    done = _run(client, "cov-financial", flow, input="Revenue 10, EBITDA 4, net income 2")
    (request,) = sim_requests(sim)
    assert request["model"] == "claude-opus-4-5-20251101"
    assert _roles(request) == [
        ("system", structured["system_prompt"]["value"]),
        ("user", "Revenue 10, EBITDA 4, net income 2"),
    ]
    (tool,) = request["tools"]
    assert request["tool_choice"]["function"]["name"] == tool["function"]["name"]
    item = tool["function"]["parameters"]["properties"]["objects"]["items"]
    assert list(item["properties"]) == [row["name"] for row in structured["output_schema"]["value"]]
    assert "EBITDA" in done["output"]["text"]


def test_provider_component_groq(client: httpx.Client, sim: str) -> None:
    flow = with_kind(
        starter("1.8.4", "Basic Prompting.json"),
        "LanguageModelComponent",
        "GroqModel",
        model_name="llama-3.1-8b-instant",
    )
    done = _run(client, "cov-groq", flow, input="hi")
    (request,) = sim_requests(sim)
    assert request["model"] == "llama-3.1-8b-instant"
    assert _roles(request)[-1] == ("user", "hi")
    assert done["output"]["text"] == reply_text(request["messages"])


ROWS = [{"title": "Queues", "summary": "Work waits."}, {"title": "Leases", "summary": "Held."}]


def test_loop_and_type_convert(client: httpx.Client, sim: str) -> None:
    """Research Translation Loop (1.8.4) with fixed rows for its ArXiv search: the body
    (Parser -> Language Model) runs once per row, in order; done gathers the replies."""
    done = _run(client, "cov-loop", loop_starter(ROWS), input="ai")
    requests = sim_requests(sim)
    assert [_roles(r) for r in requests] == [
        [("user", f"Title: {row['title']}\nSummary: {row['summary']}")] for row in ROWS
    ]
    assert done["output"]["text"] == as_text(
        [{"text": reply_text(r["messages"])} for r in requests]
    )


def test_batch_run(client: httpx.Client, sim: str) -> None:
    flow = {
        "nodes": [
            *rows_source(ROWS),
            node(
                "BatchRun-1",
                "BatchRunComponent",
                model=model_field("OpenAI", "gpt-4o-mini"),
                system_message=("str", "Summarise.", ["Message"]),
                column_name=("str", "summary", ["Message"]),
                df=("other", "", ["DataFrame"]),
            ),
            node(
                "Parser-1",
                "ParserComponent",
                pattern="{title}: {model_response}",
                input_data=("other", "", ["DataFrame"]),
            ),
            node("ChatOutput-1", "ChatOutput", input_value=("str", "", ["Message"])),
        ],
        "edges": [
            *rows_edges("BatchRun-1", "df"),
            edge("BatchRun-1", "batch_results", "Parser-1", "input_data"),
            edge("Parser-1", "parsed_text", "ChatOutput-1", "input_value"),
        ],
    }
    done = _run(client, "cov-batch", flow)
    requests = sim_requests(sim)
    assert sorted(_roles(r) for r in requests) == sorted(
        [("system", "Summarise."), ("user", row["summary"])] for row in ROWS
    )
    replies = {r["messages"][1]["content"]: reply_text(r["messages"]) for r in requests}
    assert done["output"]["text"] == "\n".join(
        f"{row['title']}: {replies[row['summary']]}" for row in ROWS
    )


def test_memory_chatbot_with_an_external_memory(client: httpx.Client, sim: str) -> None:
    """Memory Chatbot (1.8.4) with a RedisChatMemory on its memory handle: the second turn
    sees the first from flowfleet's session history; the Redis host is never contacted."""
    flow = starter("1.8.4", "Memory Chatbot.json")
    memory = _node(flow, "Memory")
    flow["data"]["nodes"].append(node("RedisChatMemory-1", "RedisChatMemory", host="10.0.0.1"))
    flow["data"]["edges"].append(edge("RedisChatMemory-1", "memory", memory["id"], "memory"))
    first = _run(client, "cov-memory", flow, input="My name is Ada", session_id="cov-mem")
    _run(client, "cov-memory", flow, input="Who am I?", session_id="cov-mem")
    second = sim_requests(sim)[-1]
    assert (
        f"User: My name is Ada\nAI: {first['output']['text']}" in second["messages"][0]["content"]
    )
    assert second["messages"][-1] == {"role": "user", "content": "Who am I?"}


def test_saas_and_code_components_are_refused_naming_node_and_service(
    client: httpx.Client,
) -> None:
    response = client.put("/v1/flows/cov-meeting", json=starter("1.8.4", "Meeting Summary.json"))
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert {p["node_type"] for p in problems} == {
        "AssemblyAITranscriptionJobCreator",
        "AssemblyAITranscriptionJobPoller",
    }
    assert all("AssemblyAI" in p["message"] and p["node_id"] in p["message"] for p in problems)

    flow = with_kind(starter("1.8.4", "Basic Prompting.json"), "Prompt", "PythonREPLComponent")
    response = client.put("/v1/flows/cov-repl", json=flow)
    assert response.status_code == 422
    (problem,) = [p for p in response.json()["problems"] if p["node_type"] == "PythonREPLComponent"]
    assert "never runs code" in problem["message"]
