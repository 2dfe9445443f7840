"""Which MCP server an MCPTools node names, and whether the deployment configures it.

Light (no MCP SDK): the API imports it to refuse, at upload, a flow naming a server that
``FLOWFLEET_MCP_SERVERS`` does not configure. LangFlow's ``mcp_server`` field (McpInput)
holds ``{"name": ..., "config": {...}}``; only the name is read: the address is the
operator's, never the flow's (a ``config`` with a URL or a command is ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.settings import Settings


def mcp_server_name(template: Mapping[str, Any]) -> str:
    """The server name an MCPTools node's ``mcp_server`` field holds ("" when none)."""
    value = (template.get("mcp_server") or {}).get("value")
    if isinstance(value, Mapping):
        value = value.get("name")
    return value.strip() if isinstance(value, str) else ""


def mcp_server_problem(
    node_id: str, node_type: str, template: Mapping[str, Any], settings: Settings
) -> str | None:
    """Why this MCPTools node cannot run here (a sentence for the 422), or None."""
    name = mcp_server_name(template)
    configured = ", ".join(sorted(settings.mcp_servers)) or "none"
    if not name:
        return (
            f"component {node_id} ({node_type}) names no MCP server; set mcp_server to one "
            f"of the servers this deployment configures (FLOWFLEET_MCP_SERVERS: {configured})"
        )
    if name not in settings.mcp_servers:
        return (
            f"component {node_id} ({node_type}) names MCP server {name!r}, which this "
            f"deployment does not configure; use one of: {configured} "
            "(operators add servers in FLOWFLEET_MCP_SERVERS)"
        )
    return None
