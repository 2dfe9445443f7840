"""A stored LangFlow export as a drawable graph: nodes where the author placed them, edges.

The console draws a flow as LangFlow shows it: the top-level nodes (a group stays one
node, a note stays a note) at their exported ``position``, and the edges between them.
Only what drawing needs is kept (no templates, no embedded code), so a large export
answers in a few kilobytes. Parsed from the export as stored; it was validated on upload.
"""

from __future__ import annotations

import json
from typing import Any

from flows.langflow.document import _as_dict, _graph_of, _parse_edge, bundled_class
from flows.langflow.specs import spec_for


def _position(raw: dict[str, Any]) -> dict[str, float] | None:
    pos = raw.get("position")
    if isinstance(pos, dict) and all(isinstance(pos.get(k), int | float) for k in ("x", "y")):
        return {"x": float(pos["x"]), "y": float(pos["y"])}
    return None


def _node(raw: dict[str, Any]) -> dict[str, Any]:
    data = _as_dict(raw.get("data"))
    inner = _as_dict(data.get("node"))
    # As the compiler reads it (data.type, else the bundled module's class); a note has none.
    ctype = str(data.get("type") or bundled_class(inner) or raw.get("type") or "")
    spec = spec_for(ctype) if ctype else None
    size: dict[str, Any] = _as_dict(raw.get("measured")) or raw
    return {
        "id": str(raw.get("id") or data.get("id") or ""),
        "type": ctype,  # data.type as exported (the component class)
        "node_type": str(raw.get("type") or ""),  # React Flow's: genericNode, noteNode, ...
        "display_name": str(inner.get("display_name") or ctype),
        "description": str(inner.get("description") or ""),
        "kind": str(spec.kind) if spec is not None else None,  # None: not runnable here
        "position": _position(raw),
        "width": size.get("width") if isinstance(size.get("width"), int | float) else None,
        "height": size.get("height") if isinstance(size.get("height"), int | float) else None,
    }


def graph_view(source: str) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [...]}`` of an export's top level, for drawing."""
    nodes_raw, edges_raw = _graph_of(json.loads(source))
    nodes = [_node(n) for n in nodes_raw if isinstance(n, dict)]
    edges = []
    for raw in edges_raw:
        if not isinstance(raw, dict):
            continue
        edge = _parse_edge(raw)
        edges.append(
            {
                "id": str(raw.get("id") or f"{edge.source}->{edge.target}"),
                "source": edge.source,
                "target": edge.target,
                "source_output": edge.source_output,
                "target_field": edge.target_field,
            }
        )
    return {"nodes": nodes, "edges": edges}
