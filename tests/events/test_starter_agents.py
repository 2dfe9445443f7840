"""LangFlow's agent starters, unmodified, run through the queue (API, Redis, a worker,
PostgreSQL, llm-sim): their SSE shows each tool call then its result, in order, and llm-sim
received the requests the agents' chain implies. Research Agent, Travel Planning Agents and
Pokédex Agent (1.8.4), Sequential Tasks Agents (1.13, three agents in sequence); Memory
Chatbot (1.13) recalling an earlier run of its session; an Agent whose MCP Tools node names
a configured MCP server.

The stack here is its own (tests/support/faults.isolated_stack) so the search tools reach
llm-sim's /search (FLOWFLEET_SEARCH_URL); a local HTTP server stands in for pokeapi.co and
for a travel guide page (loopback is allow-listed in the test stack's egress settings)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.faults import isolated_stack
from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.mcp_server import MCPServer, mcp_agent_flow
from tests.support.pages import PageServer, serving
from tests.support.sse import SseEvent, read_events
from tests.support.stack import Stack, wait_for_run

STARTERS_184 = LANGFLOW_FIXTURES / "starters-1.8.4"
STARTERS_113 = LANGFLOW_FIXTURES / "starters-1.13.0"


def _tool_page(path: str) -> tuple[str, bytes]:
    """pokeapi's /api/v2/pokemon/{name}, else a travel guide page."""
    if path.startswith("/api/v2/pokemon/"):
        pokemon = {"name": path.rsplit("/", 1)[-1], "id": 25, "types": ["electric"]}
        return "application/json", json.dumps(pokemon).encode()
    return "text/html", (
        b"<html><head><title>Lyon guide</title></head><body><p>Visit the old "
        b"town. Budget: evaluate_expression 3*120</p></body></html>"
    )


@pytest.fixture(scope="module")
def agents_stack(infra: dict[str, str], llm_sim: str, mcp_server: MCPServer) -> Iterator[Stack]:
    SEARCH_URL[:] = [f"{llm_sim}/search"]
    with isolated_stack(
        llm_sim,
        infra["redis_url"],
        FLOWFLEET_SEARCH_URL=SEARCH_URL[0],
        FLOWFLEET_MCP_SERVERS=json.dumps({"notes": mcp_server.url}),
    ) as s:
        yield s


@pytest.fixture
def agents_client(agents_stack: Stack) -> Iterator[httpx.Client]:
    with agents_stack.client() as c:
        yield c


@pytest.fixture
def tool_server() -> Iterator[PageServer]:
    """pokeapi and a travel guide page, on loopback."""
    with serving(_tool_page) as server:
        yield server


def _run(client: httpx.Client, path: Path, text: str) -> tuple[str, list[SseEvent]]:
    flow_id = "starter-" + path.stem.lower().replace(" ", "-").replace("é", "e")
    upload = client.put(f"/v1/flows/{flow_id}", content=path.read_bytes())
    assert upload.status_code in (200, 201), upload.text
    run_id = client.post(f"/v1/flows/{flow_id}/runs", json={"input": text}).json()["id"]
    return run_id, read_events(client, run_id)


def _tool_events(events: list[SseEvent]) -> list[tuple[str, str]]:
    """(event, tool name) of each tool_call / tool_result, in stream order; a result's
    name is its call's (checked by id)."""
    names: dict[str, str] = {}
    out = []
    for event in events:
        if event.event == "tool_call":
            names[event.data["id"]] = event.data["name"]
            out.append(("tool_call", event.data["name"]))
        elif event.event == "tool_result":
            out.append(("tool_result", names[event.data["id"]]))
    return out


def sim_search_rows(search: dict[str, Any]) -> list[dict[str, Any]]:
    """The results llm-sim's /search answers for a recorded request (it is deterministic)."""
    return httpx.post(SEARCH_URL[0], json=search).json()["results"]


SEARCH_URL: list[str] = []


def _offered(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


def _last_user(request: dict[str, Any]) -> str:
    return next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user")


def test_research_agent(agents_client: httpx.Client, sim: httpx.Client) -> None:
    """Research Agent (1.8.4): the planning model, then the agent searches with Tavily's
    tool (fetch_content_dataframe, at llm-sim's /search), then the writing model gets the
    agent's findings. Four model calls, one tool call, in that order."""
    run_id, events = _run(
        agents_client,
        STARTERS_184 / "Research Agent.json",
        "fetch_content_dataframe: sodium batteries",
    )
    assert [e.event for e in events if e.event != "token"][0] == "status"
    assert _tool_events(events) == [
        ("tool_call", "fetch_content_dataframe"),
        ("tool_result", "fetch_content_dataframe"),
    ]
    result = next(e for e in events if e.event == "tool_result")
    assert result.data["status"] == "success"
    (search,) = sim.get("/_sim/searches").json()
    assert "sodium batteries" in search["query"]
    planner, agent_first, agent_second, writer = sim.get("/_sim/requests").json()
    assert "tools" not in planner
    assert _last_user(planner) == "fetch_content_dataframe: sodium batteries"
    assert _offered(agent_first) == ["fetch_content_dataframe", "get_current_date"]
    # The tool's whole answer went back to the model (SSE carries its first part).
    tool_message = agent_second["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == result.data["id"]
    assert tool_message["content"].startswith(result.data["result"])
    rows = json.loads(tool_message["content"])
    assert [r["url"] for r in rows] == [r["url"] for r in sim_search_rows(search)]
    assert "tools" not in writer
    assert "Tool results: fetch_content_dataframe:" in _last_user(writer)
    run = wait_for_run(agents_client, run_id)
    assert run["status"] == "succeeded"


def test_travel_planning_agents(
    agents_client: httpx.Client, sim: httpx.Client, tool_server: PageServer
) -> None:
    """Travel Planning Agents (1.8.4): three agents in a chain, each with its own tool:
    search (the city), then the URL tool (the guide page the search results mention), then
    the calculator (the budget the page gives). SSE shows the three calls, each followed by
    its result, in chain order; each agent's input is the previous agent's answer."""
    guide = f"{tool_server.url}/guide"
    run_id, events = _run(
        agents_client,
        STARTERS_184 / "Travel Planning Agents.json",
        f"fetch_content_dataframe Lyon, see {guide}",
    )
    assert _tool_events(events) == [
        ("tool_call", "fetch_content_dataframe"),
        ("tool_result", "fetch_content_dataframe"),
        ("tool_call", "fetch_content"),
        ("tool_result", "fetch_content"),
        ("tool_call", "evaluate_expression"),
        ("tool_result", "evaluate_expression"),
    ]
    results = [e for e in events if e.event == "tool_result"]
    assert all(r.data["status"] == "success" for r in results)
    pages = json.loads(results[1].data["result"])
    # The URLs the search results quote (llm-sim's results repeat the query, a URL at times
    # followed by a colon, which the local server answers the same).
    assert pages
    assert all(p["url"].startswith(guide) for p in pages)
    assert "Visit the old town." in pages[0]["text"]  # the third agent reads the budget
    assert "/guide" in tool_server.paths
    assert json.loads(results[2].data["result"]) == {"result": "360"}
    requests = sim.get("/_sim/requests").json()
    assert len(requests) == 6  # two per agent: the tool call, then the answer
    assert _offered(requests[0]) == ["fetch_content_dataframe", "get_current_date"]
    assert _offered(requests[2])[0] == "fetch_content"
    assert _offered(requests[4])[0] == "evaluate_expression"
    # The chain: an agent's input is the answer the previous agent's last request produced.
    assert _last_user(requests[2]).startswith("Tool results: fetch_content_dataframe:")
    assert _last_user(requests[4]).startswith("Tool results: fetch_content:")
    run = wait_for_run(agents_client, run_id)
    assert run["status"] == "succeeded"
    assert run["output"]["text"].startswith('Tool results: evaluate_expression: {"result": "360"}')


def test_pokedex_agent(
    agents_client: httpx.Client, sim: httpx.Client, tool_server: PageServer
) -> None:
    """Pokédex Agent (1.8.4): the agent calls make_api_request (API Request in tool mode)
    with the URL the user names; the request goes through the egress policy to the local
    stand-in for pokeapi.co and its JSON is the tool's result."""
    url = f"{tool_server.url}/api/v2/pokemon/pikachu"
    run_id, events = _run(
        agents_client, STARTERS_184 / "Pokédex Agent.json", f"make_api_request {url}"
    )
    assert _tool_events(events) == [
        ("tool_call", "make_api_request"),
        ("tool_result", "make_api_request"),
    ]
    call = next(e for e in events if e.event == "tool_call")
    assert call.data["args"]["url_input"] == url
    result = next(e for e in events if e.event == "tool_result")
    assert json.loads(result.data["result"]) == {
        "source": url,
        "status_code": 200,
        "response": {"name": "pikachu", "id": 25, "types": ["electric"]},
    }
    assert tool_server.paths == ["/api/v2/pokemon/pikachu"]
    first, second = sim.get("/_sim/requests").json()
    assert _offered(first) == ["make_api_request", "get_current_date"]
    assert second["messages"][-1]["content"] == result.data["result"]
    assert wait_for_run(agents_client, run_id)["status"] == "succeeded"


def test_sequential_tasks_agents(agents_client: httpx.Client, sim: httpx.Client) -> None:
    """Sequential Tasks Agents (1.13): the research agent searches (perform_search), the
    analysis agent gets its findings, and the writer agent's system prompt is the Prompt
    holding both; each agent's tool call is followed by its result, in that order."""
    run_id, events = _run(
        agents_client, STARTERS_113 / "Sequential Tasks Agents.json", "perform_search: tidal power"
    )
    names = _tool_events(events)
    assert names[:2] == [("tool_call", "perform_search"), ("tool_result", "perform_search")]
    assert len(names) == 6
    assert [kind for kind, _ in names] == ["tool_call", "tool_result"] * 3
    requests = sim.get("/_sim/requests").json()
    assert len(requests) == 6
    research, analysis, writer = requests[0], requests[2], requests[4]
    assert _offered(research)[0] == "perform_search"
    assert _last_user(analysis).startswith("Tool results: perform_search:")
    # The writer's system prompt is the Prompt filled with the research and the analysis.
    system = writer["messages"][0]
    assert system["role"] == "system"
    assert "Tool results: perform_search:" in system["content"]
    assert _last_user(requests[3]) == _last_user(analysis)
    (search,) = sim.get("/_sim/searches").json()
    assert search["query"] == "perform_search: tidal power"
    assert wait_for_run(agents_client, run_id)["status"] == "succeeded"


def test_memory_chatbot_recalls_an_earlier_run_of_the_session(
    agents_client: httpx.Client, sim: httpx.Client
) -> None:
    """Memory Chatbot (1.13): the first run of a session stores its turns; the second
    run's retrieve_memory call answers the earlier turn that matches (flowfleet's
    owner-scoped session history is the Memory Base); another session recalls nothing."""
    path = STARTERS_113 / "Memory Chatbot.json"
    upload = agents_client.put("/v1/flows/starter-memory-chatbot", content=path.read_bytes())
    assert upload.status_code in (200, 201), upload.text

    def run(text: str, session: str) -> tuple[str, list[SseEvent]]:
        body = {"input": text, "session_id": session}
        run_id = agents_client.post("/v1/flows/starter-memory-chatbot/runs", json=body).json()["id"]
        events = read_events(agents_client, run_id)
        assert wait_for_run(agents_client, run_id)["status"] == "succeeded"
        return run_id, events

    run("get_current_date My favourite colour is teal", "mem-1")
    _, events = run("retrieve_memory favourite colour", "mem-1")
    assert _tool_events(events) == [
        ("tool_call", "retrieve_memory"),
        ("tool_result", "retrieve_memory"),
    ]
    rows = json.loads(next(e for e in events if e.event == "tool_result").data["result"])
    assert rows[0]["content"] == "get_current_date My favourite colour is teal"
    assert rows[0]["sender"] == "User"
    assert rows[0]["_score"] == 0.6667  # "favourite colour" of "retrieve_memory favourite colour"
    _, other = run("retrieve_memory favourite colour", "mem-2")
    assert json.loads(next(e for e in other if e.event == "tool_result").data["result"]) == []


def test_agent_with_mcp_tools_through_the_queue(
    agents_client: httpx.Client, sim: httpx.Client, mcp_server: MCPServer
) -> None:
    """An Agent whose MCP Tools node names "notes" (FLOWFLEET_MCP_SERVERS maps it to a real
    MCP server): the worker lists the server's tools, the model calls lookup_note, the
    server runs it, SSE shows the call then its result; a server name the deployment does
    not configure is a 422 naming the node and the server."""
    flow = mcp_agent_flow("notes")
    upload = agents_client.put("/v1/flows/starter-mcp", json=flow)
    assert upload.status_code in (200, 201), upload.text
    run_id = agents_client.post(
        "/v1/flows/starter-mcp/runs", json={"input": "lookup_note releases"}
    ).json()["id"]
    events = read_events(agents_client, run_id)
    assert _tool_events(events) == [("tool_call", "lookup_note"), ("tool_result", "lookup_note")]
    call = next(e for e in events if e.event == "tool_call")
    assert call.data["args"] == {"topic": "lookup_note releases"}
    result = next(e for e in events if e.event == "tool_result")
    assert result.data["result"] == "note on lookup_note releases: ship on Fridays"
    assert "lookup_note releases" in mcp_server.calls
    # The flow is Simple Agent 1.8.4's, whose model is Anthropic's: the Messages API, where
    # tools are offered by name and a tool's answer goes back as a tool_result block.
    first, second = sim.get("/_sim/calls").json()
    assert first["api"] == second["api"] == "anthropic"
    assert "lookup_note" in [t["name"] for t in first["body"]["tools"]]
    (told,) = second["body"]["messages"][-1]["content"]
    assert (told["type"], told["tool_use_id"]) == ("tool_result", call.data["id"])
    assert told["content"] == result.data["result"]
    assert wait_for_run(agents_client, run_id)["status"] == "succeeded"

    refused = agents_client.put("/v1/flows/starter-mcp-other", json=mcp_agent_flow("payroll"))
    assert refused.status_code == 422, refused.text
    assert "MCP server 'payroll'" in refused.text
    assert "notes" in refused.text
