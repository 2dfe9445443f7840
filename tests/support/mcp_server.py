"""A real MCP server for tests: the SDK's FastMCP over streamable HTTP, with one tool,
served by uvicorn in a thread of the test process (workers reach it on loopback)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import uvicorn
from mcp.server.fastmcp import FastMCP

from tests.support.fixtures import LANGFLOW_FIXTURES

SIMPLE_AGENT_184 = LANGFLOW_FIXTURES / "starters-1.8.4" / "Simple Agent.json"


class MCPServer:
    """A real MCP server (the SDK's FastMCP, streamable HTTP) with one tool, in a thread."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        mcp = FastMCP("notes", stateless_http=True, json_response=True)

        @mcp.tool()
        def lookup_note(topic: str) -> str:
            """Look up the team's note about a topic."""
            self.calls.append(topic)
            return f"note on {topic}: ship on Fridays"

        config = uvicorn.Config(
            mcp.streamable_http_app(), host="127.0.0.1", port=0, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the MCP server did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/mcp"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def mcp_agent_flow(server_name: str) -> dict[str, Any]:
    """Simple Agent (1.8.4) whose Calculator node is an MCP Tools node naming the server."""
    flow = json.loads(SIMPLE_AGENT_184.read_text())
    node = next(n for n in flow["data"]["nodes"] if n["data"].get("type") == "CalculatorComponent")
    node["data"]["type"] = "MCPTools"
    node["data"]["node"]["template"] = {
        "mcp_server": {"type": "mcp", "value": {"name": server_name, "config": {}}},
        "tools_metadata": {"type": "tools", "value": []},
    }
    return flow
