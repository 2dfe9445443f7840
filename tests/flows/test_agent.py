"""LangFlow's Agent compiled and run against a real llm-sim: the tool-calling loop, its
tools (tool-mode components, the current-date tool), history, limits and structured output."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.base import FlowInput, HistoryMessage
from flows.langflow.compiler import compile_langflow
from shared.settings import get_settings
from tests.flows.conftest import sim_requests
from tests.support.fixtures import LANGFLOW_FIXTURES

SIMPLE_AGENT_184 = LANGFLOW_FIXTURES / "starters-1.8.4" / "Simple Agent.json"
SIMPLE_AGENT_113 = LANGFLOW_FIXTURES / "starters-1.13.0" / "Simple Agent.json"


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _agent(flow: dict[str, Any]) -> dict[str, Any]:
    return next(n for n in flow["data"]["nodes"] if n["data"].get("type") == "Agent")


def _tool_names(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


async def test_simple_agent_calls_the_calculator_then_answers(sim: str) -> None:
    """Simple Agent (LangFlow 1.8.4, unmodified): the model is offered the connected tools
    under LangFlow's names plus get_current_date; the calculator's result goes back to the
    model as a tool message and the final answer carries it."""
    flow = compile_langflow(_load(SIMPLE_AGENT_184))
    result = await flow.ainvoke(FlowInput("use evaluate_expression on 4*4*(33/22)+12-20"), {})
    first, second = sim_requests(sim)
    assert _tool_names(first) == ["evaluate_expression", "fetch_content", "get_current_date"]
    assert first["model"] == "claude-opus-4-5-20251101"
    system = _agent(_load(SIMPLE_AGENT_184))["data"]["node"]["template"]["system_prompt"]["value"]
    assert [(m["role"], m["content"]) for m in first["messages"]] == [
        ("system", system),
        ("user", "use evaluate_expression on 4*4*(33/22)+12-20"),
    ]
    call = second["messages"][2]["tool_calls"][0]
    assert call["function"] == {
        "name": "evaluate_expression",
        "arguments": json.dumps({"expression": "4*4*(33/22)+12-20"}),
    }
    tool_message = second["messages"][3]
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == call["id"]
    assert json.loads(tool_message["content"]) == {"result": "16"}
    assert result.text is not None
    assert result.text.startswith('Tool results: evaluate_expression: {"result": "16"} [')


async def test_current_date_tool_and_session_history(sim: str) -> None:
    """Without tools named, the agent's first tool (URL's fetch_content) would be called: with
    the input naming get_current_date the date tool answers; earlier turns come before the
    input, as user/assistant messages (LangFlow's chat history), at most n_messages."""
    raw = _load(SIMPLE_AGENT_184)
    _agent(raw)["data"]["node"]["template"]["n_messages"]["value"] = 2
    flow = compile_langflow(raw)
    history = [
        HistoryMessage("user", "one"),
        HistoryMessage("assistant", "two"),
        HistoryMessage("user", "three"),
        HistoryMessage("assistant", "four"),
    ]
    result = await flow.ainvoke(FlowInput("get_current_date please", history=history), {})
    first, second = sim_requests(sim)
    assert [(m["role"], m["content"]) for m in first["messages"][1:]] == [
        ("user", "three"),
        ("assistant", "four"),
        ("user", "get_current_date please"),
    ]
    assert second["messages"][-1]["content"].startswith("Current date and time in ")
    assert result.text is not None
    assert "get_current_date: Current date and time in " in result.text


async def test_max_iterations_caps_the_model_calls(sim: str) -> None:
    """An agent whose model keeps calling tools stops after max_iterations model calls with
    LangFlow's limit message (the sim calls each named tool once, so two tools, one call)."""
    raw = _load(SIMPLE_AGENT_184)
    _agent(raw)["data"]["node"]["template"]["max_iterations"]["value"] = 1
    flow = compile_langflow(raw)
    result = await flow.ainvoke(FlowInput("evaluate_expression 1+1 and get_current_date"), {})
    assert len(sim_requests(sim)) == 1
    assert result.text == "Model call limits exceeded: run limit (1/1)"


async def test_simple_agent_113_replaces_prompt_values(sim: str) -> None:
    """LangFlow 1.13's prompt placeholders {current_date} and {model_name} are filled; the
    1.13 Agent adds the calculator tool (add_calculator_tool) beside the connected ones."""
    flow = compile_langflow(_load(SIMPLE_AGENT_113))
    await flow.ainvoke(FlowInput("evaluate_expression 2*21"), {})
    first = sim_requests(sim)[0]
    system = first["messages"][0]["content"]
    assert "{current_date}" not in system
    assert "{model_name}" not in system
    assert "- Today's date: 20" in system
    assert "evaluate_expression" in _tool_names(first)
    assert "get_current_date" in _tool_names(first)


@pytest.mark.parametrize("disabled", [True, False])
async def test_add_current_date_tool_switch(sim: str, disabled: bool) -> None:
    """add_current_date_tool false leaves get_current_date out."""
    raw = _load(SIMPLE_AGENT_184)
    _agent(raw)["data"]["node"]["template"]["add_current_date_tool"]["value"] = not disabled
    await compile_langflow(raw).ainvoke(FlowInput("evaluate_expression 1+1"), {})
    assert ("get_current_date" in _tool_names(sim_requests(sim)[0])) is not disabled


POKEDEX_AGENT_184 = LANGFLOW_FIXTURES / "starters-1.8.4" / "Pokédex Agent.json"


async def test_web_search_tool_reaches_the_search_backend(
    sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simple Agent 1.13 (UnifiedWebSearch in tool mode): perform_search goes to the one
    configured search backend (llm-sim's /search here) with the model's query, and the
    results are the tool's answer."""
    base = sim.removesuffix("/v1")
    monkeypatch.setenv("FLOWFLEET_SEARCH_URL", f"{base}/search")
    get_settings.cache_clear()
    flow = compile_langflow(_load(SIMPLE_AGENT_113))
    result = await flow.ainvoke(FlowInput("perform_search: langflow agents"), {})
    (search,) = httpx.get(f"{base}/_sim/searches").json()
    assert search["query"] == "perform_search: langflow agents"
    assert search["max_results"] == 5
    first, second = sim_requests(sim)
    call = second["messages"][2]["tool_calls"][0]["function"]
    assert call["name"] == "perform_search"
    assert json.loads(call["arguments"]) == {
        "query": "perform_search: langflow agents",
        "search_mode": "Web",
    }
    rows = json.loads(second["messages"][3]["content"])
    assert rows[0]["title"] == "Result 1 for perform_search: langflow agents"
    assert len(rows) == 5
    assert result.text is not None
    assert "Result 1 for perform_search" in result.text


async def test_api_request_tool_goes_through_the_egress_policy(
    sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pokédex Agent's API Request tool: a loopback URL is refused by the egress policy and the
    model reads the refusal as the tool's result; once the host is allow-listed, the same
    call returns the response."""
    base = sim.removesuffix("/v1")
    question = f"make_api_request {base}/v1/models"
    await compile_langflow(_load(POKEDEX_AGENT_184)).ainvoke(FlowInput(question), {})
    refused = sim_requests(sim)[1]["messages"][-1]
    assert refused["role"] == "tool"
    assert "egress" in refused["content"].lower() or "refused" in refused["content"].lower()
    httpx.delete(f"{base}/_sim/requests")
    monkeypatch.setenv("FLOWFLEET_EGRESS_ALLOWED_HOSTS", '["127.0.0.1"]')
    get_settings.cache_clear()
    await compile_langflow(_load(POKEDEX_AGENT_184)).ainvoke(FlowInput(question), {})
    answered = json.loads(sim_requests(sim)[1]["messages"][-1]["content"])
    assert answered["status_code"] == 200
    assert answered["response"]["object"] == "list"


def _with_sub_agent(raw: dict[str, Any]) -> dict[str, Any]:
    """Simple Agent plus a second Agent in tool mode connected to the first one's tools."""
    main = _agent(raw)
    sub = copy.deepcopy(main)
    sub["id"] = "Agent-sub01"
    sub["data"]["id"] = "Agent-sub01"
    template = sub["data"]["node"]["template"]
    template["system_prompt"]["value"] = "You are the sub agent."
    raw["data"]["nodes"].append(sub)
    edge = copy.deepcopy(
        next(e for e in raw["data"]["edges"] if e["data"]["targetHandle"]["fieldName"] == "tools")
    )
    edge["source"] = "Agent-sub01"
    edge["data"]["sourceHandle"].update(
        {"id": "Agent-sub01", "name": "component_as_tool", "dataType": "Agent"}
    )
    edge["sourceHandle"] = ""
    edge["id"] = "edge-sub-agent"
    raw["data"]["edges"].append(edge)
    return raw


async def test_an_agent_as_another_agents_tool(sim: str) -> None:
    """An Agent in tool mode is offered as message_response; calling it runs the inner
    agent with the argument as its input and its own prompt and tools; its answer is the
    outer agent's tool result."""
    flow = compile_langflow(_with_sub_agent(_load(SIMPLE_AGENT_184)))
    result = await flow.ainvoke(FlowInput("ask message_response about 3*3"), {})
    outer_first, inner_first, inner_second, outer_second = sim_requests(sim)
    assert "message_response" in _tool_names(outer_first)
    assert inner_first["messages"][0] == {"role": "system", "content": "You are the sub agent."}
    assert inner_first["messages"][1]["content"] == "ask message_response about 3*3"
    # The inner agent has no connected tools: only its own current-date tool.
    assert _tool_names(inner_first) == ["get_current_date"]
    assert inner_second["messages"][-1]["content"].startswith("Current date and time in UTC")
    assert outer_second["messages"][-1]["role"] == "tool"
    assert outer_second["messages"][-1]["content"].startswith(
        "Tool results: get_current_date: Current date and time in UTC"
    )
    assert result.text is not None
    assert result.text.startswith("Tool results: message_response: Tool results: get_current")


async def test_structured_response_fits_the_output_schema(sim: str) -> None:
    """structured_response: after the loop, one forced call for output_schema with
    format_instructions as the system message; the object is the output."""
    raw = _load(SIMPLE_AGENT_184)
    agent = _agent(raw)
    agent["data"]["node"]["template"]["output_schema"]["value"] = [
        {"name": "answer", "type": "str", "description": "the answer", "multiple": "False"}
    ]
    out_edge = next(e for e in raw["data"]["edges"] if e["source"] == agent["id"])
    out_edge["data"]["sourceHandle"]["name"] = "structured_response"
    out_edge["data"]["sourceHandle"]["output_types"] = ["Data"]
    result = await compile_langflow(raw).ainvoke(FlowInput("evaluate_expression 1+1"), {})
    requests = sim_requests(sim)
    assert len(requests) == 3
    forced = requests[2]
    assert forced["tool_choice"]["function"]["name"] == "OutputModel"
    instructions = agent["data"]["node"]["template"]["format_instructions"]["value"]
    assert forced["messages"][0] == {"role": "system", "content": instructions}
    # The agent's answer (after its calculator call) is what gets structured.
    assert forced["messages"][1]["content"].startswith('Tool results: evaluate_expression: {"re')
    assert result.text is not None
    assert json.loads(result.text.removeprefix("```json\n").removesuffix("\n```")) == {
        "answer": forced["messages"][1]["content"]
    }


async def test_agent_with_stream_on_streams_its_model_calls(sim: str) -> None:
    """The Agent's stream field asks the model for a stream on every step; tool calls arrive
    as stream deltas and the loop is the same."""
    raw = _load(SIMPLE_AGENT_113)
    _agent(raw)["data"]["node"]["template"]["stream"]["value"] = True
    result = await compile_langflow(raw).ainvoke(FlowInput("evaluate_expression 5*5"), {})
    first, second = sim_requests(sim)
    assert first["stream"] is True
    assert second["stream"] is True
    assert json.loads(second["messages"][-1]["content"]) == {"result": "25"}
    assert result.text is not None
    assert result.text.startswith('Tool results: evaluate_expression: {"result": "25"}')


def test_registry_lists_the_agents_model() -> None:
    """The flow registry lists the model an Agent names (1.8+ ModelInput field)."""
    from flows.langflow.describe import model_names
    from flows.langflow.document import parse_document

    doc = parse_document(SIMPLE_AGENT_184.read_text())
    assert model_names(doc) == ["claude-opus-4-5-20251101"]
