"""LangFlow's MCP Tools component: a configured MCP server's tools as an agent's tools.

The node names a server (``mcp_server``); ``FLOWFLEET_MCP_SERVERS`` maps the name to a
streamable-HTTP URL (flows/langflow/mcp_servers.py refuses other names at upload). When the
agent's run starts, flowfleet lists the server's tools with the official ``mcp`` SDK and
offers each to the model under its MCP name, description and input schema, except those the
node's ``tools_metadata`` switched off (``status: false``, as LangFlow exports them). Each
call opens its own MCP session (stateless on flowfleet's side, so a retried run starts
clean) and hands the tool's text content back to the model; an MCP error result or a failed
call is a ToolException the model reads.

The server is the operator's, like a model backend or the search endpoint: a flow names it,
never its address, so the connection does not go through the egress policy (which fences
the addresses a flow chooses); redirects leave the server's origin never (the SDK's rule).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, Tool

from flows.langflow.components import RunContext
from flows.langflow.specs import TOOL_OUTPUT
from shared.settings import get_settings

MAX_TOOLS = 64  # tools one server may offer an agent


class MCPUnavailable(ValueError):
    """The configured MCP server could not be reached or listed; fails the run."""


@asynccontextmanager
async def mcp_session(url: str, timeout_s: float) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session over streamable HTTP."""
    timeout = httpx.Timeout(timeout_s)
    async with (
        httpx.AsyncClient(timeout=timeout, trust_env=False) as http,
        streamable_http_client(url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await asyncio.wait_for(session.initialize(), timeout_s)
        yield session


def result_text(result: CallToolResult) -> str:
    """The text a tool call answered: its text parts, else its structured content as JSON."""
    texts = [part.text for part in result.content if isinstance(part, TextContent)]
    if texts:
        return "\n".join(texts)
    if result.structuredContent is not None:
        return json.dumps(result.structuredContent, default=str)
    return ""


def _switched_off(metadata: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(m.get("name")) for m in metadata if m.get("status") is False}


class MCPToolsComponent:
    """The MCP server's tools, listed when the run starts, called one session per call."""

    def __init__(
        self, node_id: str, server: str, url: str, metadata: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        self.node_id = node_id
        self.server = server
        self.url = url
        self.metadata = metadata
        self.timeout_s = get_settings().mcp_timeout_s

    async def list_tools(self) -> list[Tool]:
        """The server's tools; raises MCPUnavailable."""
        try:
            async with mcp_session(self.url, self.timeout_s) as session:
                listed = await asyncio.wait_for(session.list_tools(), self.timeout_s)
        except Exception as exc:  # the SDK raises task-group errors of any kind
            raise MCPUnavailable(
                f"component {self.node_id}: MCP server {self.server!r} could not list its "
                f"tools: {type(exc).__name__}: {exc}"
            ) from exc
        return list(listed.tools)

    async def call(self, name: str, args: dict[str, Any]) -> str:
        """One tool call in its own session; errors become the model's ToolException."""
        try:
            async with mcp_session(self.url, self.timeout_s) as session:
                result = await asyncio.wait_for(session.call_tool(name, args), self.timeout_s)
        except Exception as exc:
            raise ToolException(
                f"Error calling {name} on MCP server {self.server!r}: {type(exc).__name__}"
            ) from exc
        text = result_text(result)
        if result.isError:
            raise ToolException(text or f"{name} failed")
        return text

    def _tool(self, tool: Tool) -> BaseTool:
        async def run(**kwargs: Any) -> str:
            return await self.call(tool.name, kwargs)

        schema = dict(tool.inputSchema or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        return StructuredTool(
            name=re.sub(r"[^A-Za-z0-9_-]", "_", tool.name)[:64],
            description=tool.description or tool.name,
            args_schema=schema,
            coroutine=run,
            handle_tool_error=True,
        )

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        off = _switched_off(self.metadata)
        tools = [t for t in await self.list_tools() if t.name not in off][:MAX_TOOLS]
        return {TOOL_OUTPUT: [self._tool(t) for t in tools]}
