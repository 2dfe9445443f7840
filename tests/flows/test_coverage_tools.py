"""Memory Base, arXiv and MCP Tools compiled and run against a real llm-sim: Memory Chatbot
(1.13, unmodified) recalls the session's turns through its retrieve_memory tool; Research
Translation Loop (unmodified) searches a local arXiv-style server through the egress
policy; an Agent calls a tool of a real MCP server (FastMCP over streamable HTTP) that
FLOWFLEET_MCP_SERVERS configures, and a flow naming any other server is a 422."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from flowfleet.llm_sim import reply_text
from flows.base import FlowInput, FlowValidationError, HistoryMessage
from flows.langflow.compiler import compile_langflow
from flows.langflow.components import as_text
from flows.langflow.tools.arxiv import arxiv_query, parse_atom
from shared.settings import get_settings
from tests.flows.conftest import sim_calls, sim_requests
from tests.support.fixtures import LANGFLOW_FIXTURES
from tests.support.mcp_server import MCPServer, mcp_agent_flow
from tests.support.pages import PageServer, serving

MEMORY_CHATBOT = LANGFLOW_FIXTURES / "starters-1.13.0" / "Memory Chatbot.json"
TRANSLATION_LOOP = LANGFLOW_FIXTURES / "starters-1.8.4" / "Research Translation Loop.json"


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _tool_messages(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in requests[-1]["messages"] if m["role"] == "tool"]


# --- Memory Base -----------------------------------------------------------------------------

HISTORY = (
    HistoryMessage("user", "My favourite colour is teal"),
    HistoryMessage("assistant", "Noted: teal."),
    HistoryMessage("user", "I live in Lyon"),
    HistoryMessage("assistant", "Lyon: lovely."),
)


async def test_memory_chatbot_recalls_the_session_through_retrieve_memory(sim: str) -> None:
    """The agent is offered LangFlow's retrieve_memory tool; called with the user's words it
    answers the session's turns that share them, best match first (owner-scoped history is
    what the worker loads; here the run's history is given)."""
    flow = compile_langflow(_load(MEMORY_CHATBOT))
    question = "retrieve_memory: what is my favourite colour"
    result = await flow.ainvoke(FlowInput(question, session_id="s1", history=HISTORY), {})
    requests = sim_requests(sim)
    offered = [t["function"]["name"] for t in requests[0]["tools"]]
    assert offered[0] == "retrieve_memory"
    schema = requests[0]["tools"][0]["function"]["parameters"]
    assert list(schema["properties"]) == ["search_query"]
    call = requests[1]["messages"][-2]["tool_calls"][0]["function"]
    assert call["name"] == "retrieve_memory"
    assert json.loads(call["arguments"]) == {"search_query": question}
    rows = json.loads(_tool_messages(requests)[0]["content"])
    # "my favourite colour is" are 4 of the query's 6 words; the other turns share none.
    assert rows == [
        {
            "content": "My favourite colour is teal",
            "_score": 0.6667,
            "sender": "User",
            "sender_name": "User",
            "turn": 0,
        }
    ]
    assert result.text is not None
    assert "My favourite colour is teal" in result.text


async def test_memory_base_without_history_or_query_returns_no_rows(sim: str) -> None:
    """No earlier turns: the tool answers an empty list (LangFlow: an empty DataFrame)."""
    flow = compile_langflow(_load(MEMORY_CHATBOT))
    await flow.ainvoke(FlowInput("retrieve_memory: anything about me"), {})
    assert json.loads(_tool_messages(sim_requests(sim))[0]["content"]) == []


# --- arXiv -----------------------------------------------------------------------------------

ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <entry>
    <id>http://arxiv.org/abs/2401.00001v1</id>
    <title>Queues Considered</title>
    <summary>Work waits in line.</summary>
    <published>2024-01-01T00:00:00Z</published>
    <author><name>Ada Lovelace</name></author>
    <link href="http://arxiv.org/abs/2401.00001v1" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2401.00001v1" rel="related"/>
    <arxiv:primary_category term="cs.DC"/>
    <category term="cs.DC"/><category term="cs.OS"/>
  </entry>
  <entry>
    <id>http://arxiv.org/abs/2401.00002v1</id>
    <title>Leases Held</title>
    <summary>Held until renewed.</summary>
    <author><name>Alan Turing</name></author>
    <arxiv:primary_category term="cs.DC"/>
  </entry>
</feed>"""


@pytest.fixture
def atom_server() -> Iterator[PageServer]:
    """A local arXiv API stand-in: answers every GET with ATOM (its paths hold the queries)."""
    with serving(lambda path: ("application/atom+xml", ATOM.encode())) as server:
        yield server


def _queries(server: PageServer) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(path).query) for path in server.paths]


async def test_research_translation_loop_searches_arxiv_through_egress(
    sim: str, atom_server: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Research Translation Loop (1.8.4, unmodified): the chat input is the arXiv query
    (max_results 3, the node's), each paper of the Atom answer is one pass of the loop body
    (Parser -> Language Model), in order."""
    monkeypatch.setenv("FLOWFLEET_ARXIV_URL", f"{atom_server.url}/api/query")
    monkeypatch.setenv("FLOWFLEET_EGRESS_ALLOWED_HOSTS", '["127.0.0.1"]')
    get_settings.cache_clear()
    flow = compile_langflow(_load(TRANSLATION_LOOP))
    result = await flow.ainvoke(FlowInput("distributed queues"), {})
    assert _queries(atom_server) == [{"search_query": ["distributed queues"], "max_results": ["3"]}]
    requests = sim_requests(sim)
    assert [[(m["role"], m["content"]) for m in r["messages"]] for r in requests] == [
        [("user", "Title: Queues Considered\nSummary: Work waits in line.")],
        [("user", "Title: Leases Held\nSummary: Held until renewed.")],
    ]
    assert result.text == as_text([{"text": reply_text(r["messages"])} for r in requests])


async def test_arxiv_is_fenced_by_the_egress_policy(
    sim: str, atom_server: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loopback arXiv URL that the allow-list does not admit is refused before any
    request: the component's one row is LangFlow's error row naming the refusal."""
    monkeypatch.setenv("FLOWFLEET_ARXIV_URL", f"{atom_server.url}/api/query")
    monkeypatch.setenv("FLOWFLEET_EGRESS_ALLOWED_HOSTS", "[]")
    get_settings.cache_clear()
    from flows.langflow.tools.arxiv import search_arxiv

    rows = await search_arxiv("queues")
    assert len(rows) == 1
    assert rows[0]["error"].startswith("Request error: ")
    assert "127.0.0.1" in rows[0]["error"]
    assert _queries(atom_server) == []


def test_arxiv_query_and_atom_rows() -> None:
    """The field prefixes LangFlow sends; LangFlow's row for an entry; DTDs are refused."""
    assert arxiv_query("Lovelace", "author") == "au:Lovelace"
    assert arxiv_query("cs.DC", "cat") == "cat:cs.DC"
    assert arxiv_query("queues", "all") == "queues"
    first = parse_atom(ATOM.encode())[0]
    assert first == {
        "id": "http://arxiv.org/abs/2401.00001v1",
        "title": "Queues Considered",
        "summary": "Work waits in line.",
        "published": "2024-01-01T00:00:00Z",
        "updated": None,
        "authors": ["Ada Lovelace"],
        "arxiv_url": "http://arxiv.org/abs/2401.00001v1",
        "pdf_url": "http://arxiv.org/pdf/2401.00001v1",
        "comment": None,
        "journal_ref": None,
        "primary_category": "cs.DC",
        "categories": ["cs.DC", "cs.OS"],
    }
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><feed>&a;</feed>'
    with pytest.raises(ValueError, match="DTD"):
        parse_atom(bomb)


# --- MCP Tools -------------------------------------------------------------------------------


async def test_agent_calls_a_configured_mcp_servers_tool(
    sim: str, mcp_server: MCPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node names the server "notes"; FLOWFLEET_MCP_SERVERS maps it to the MCP server's
    URL. The model is offered the server's tool (name, description, input schema as MCP
    lists them); its call reaches the server and the tool's text goes back to the model."""
    monkeypatch.setenv("FLOWFLEET_MCP_SERVERS", json.dumps({"notes": mcp_server.url}))
    get_settings.cache_clear()
    flow = compile_langflow(mcp_agent_flow("notes"))
    result = await flow.ainvoke(FlowInput("lookup_note deploys"), {})
    # Simple Agent 1.8.4's model is Anthropic's: the requests are Anthropic Messages ones.
    calls = sim_calls(sim)
    assert [c["api"] for c in calls] == ["anthropic", "anthropic"]
    first, second = (c["body"] for c in calls)
    lookup = next(t for t in first["tools"] if t["name"] == "lookup_note")
    assert lookup["description"] == "Look up the team's note about a topic."
    assert lookup["input_schema"]["properties"]["topic"]["type"] == "string"
    assert lookup["input_schema"]["required"] == ["topic"]
    (call,) = [b for b in second["messages"][-2]["content"] if b["type"] == "tool_use"]
    assert call["name"] == "lookup_note"
    assert call["input"] == {"topic": "lookup_note deploys"}
    assert mcp_server.calls == ["lookup_note deploys"]
    assert second["messages"][-1] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "content": "note on lookup_note deploys: ship on Fridays",
                "tool_use_id": call["id"],
                "is_error": False,
            }
        ],
    }
    assert result.text is not None
    assert "lookup_note: note on lookup_note deploys: ship on Fridays" in result.text


async def test_switched_off_mcp_tools_are_not_offered(
    sim: str, mcp_server: MCPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tools_metadata entry with status false (LangFlow's switch) hides that tool."""
    monkeypatch.setenv("FLOWFLEET_MCP_SERVERS", json.dumps({"notes": mcp_server.url}))
    get_settings.cache_clear()
    flow_json = mcp_agent_flow("notes")
    node = next(n for n in flow_json["data"]["nodes"] if n["data"]["type"] == "MCPTools")
    node["data"]["node"]["template"]["tools_metadata"]["value"] = [
        {"name": "lookup_note", "status": False}
    ]
    await compile_langflow(flow_json).ainvoke(FlowInput("what day is it"), {})
    (first,) = sim_calls(sim)[:1]
    assert first["api"] == "anthropic"  # Simple Agent 1.8.4's model is Anthropic's
    offered = [t["name"] for t in first["body"]["tools"]]
    assert offered  # the agent's other tools still are
    assert "lookup_note" not in offered


def test_a_flow_naming_an_unconfigured_mcp_server_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compiling (and validating) refuses a server name the deployment does not configure,
    naming the node, the server and the configured names."""
    monkeypatch.setenv("FLOWFLEET_MCP_SERVERS", json.dumps({"notes": "http://mcp.internal/mcp"}))
    get_settings.cache_clear()
    try:
        with pytest.raises(FlowValidationError) as caught:
            compile_langflow(mcp_agent_flow("payroll"))
    finally:
        get_settings.cache_clear()
    (problem,) = caught.value.problems
    assert problem.node_type == "MCPTools"
    assert "'payroll'" in problem.message
    assert "notes" in problem.message
    assert problem.node_id
    assert problem.node_id in problem.message


def test_upload_naming_an_unknown_mcp_server_is_a_422(client: httpx.Client) -> None:
    """Through the API (which configures no MCP server): 422 naming the node and the server."""
    flow = mcp_agent_flow("notes")
    answer = client.put("/v1/flows/mcp-unknown", json=flow)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert "MCP server 'notes'" in json.dumps(body)
    node_id = next(n["id"] for n in flow["data"]["nodes"] if n["data"]["type"] == "MCPTools")
    assert node_id in json.dumps(body)
