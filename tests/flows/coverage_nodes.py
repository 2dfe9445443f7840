"""LangFlow-shaped nodes and starter surgery for the coverage tests (field names as in
LangFlow's component sources)."""

from __future__ import annotations

import json
from typing import Any

from tests.flows.langflow_fixtures import clone
from tests.flows.langflow_nodes import edge
from tests.support.fixtures import LANGFLOW_FIXTURES


def starter(release: str, name: str) -> dict[str, Any]:
    """A fresh copy of a starter project (``release`` is ``1.8.4`` or ``1.13.0``)."""
    return json.loads((LANGFLOW_FIXTURES / f"starters-{release}" / name).read_text())


def node(node_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    """A node of ``kind``; each field is a value, or ``(type, value, input_types)``."""
    template: dict[str, Any] = {}
    for name, spec in fields.items():
        ftype, value, types = spec if isinstance(spec, tuple) else ("str", spec, [])
        template[name] = {"type": ftype, "value": value, "input_types": types}
    template["code"] = {"type": "code", "value": "raise SystemExit('never run')"}
    return {
        "id": node_id,
        "type": "genericNode",
        "data": {"id": node_id, "type": kind, "node": {"display_name": kind, "template": template}},
    }


def model_field(provider: str, name: str, **metadata: Any) -> tuple[str, Any, list[str]]:
    """A 1.8+ ModelInput value selecting ``name`` of ``provider``."""
    meta = {"model_class": "ChatOpenAI", "api_key_param": "api_key", **metadata}
    return ("model", [{"provider": provider, "name": name, "metadata": meta}], ["LanguageModel"])


def rows_source(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TextInput holding rows as JSON, and a Type Convert (auto parse) making them a table."""
    return [
        node("TextInput-rows", "TextInput", input_value=json.dumps(rows)),
        node(
            "TypeConverter-rows",
            "TypeConverterComponent",
            input_data=("other", "", ["Message", "Data", "DataFrame"]),
            auto_parse=("bool", True, []),
            output_type="DataFrame",
        ),
    ]


def rows_edges(target: str, field: str) -> list[dict[str, Any]]:
    return [
        edge("TextInput-rows", "text", "TypeConverter-rows", "input_data"),
        edge("TypeConverter-rows", "dataframe_output", target, field),
    ]


def loop_starter(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Research Translation Loop (1.8.4) with its ArXiv search replaced by fixed rows
    (test_coverage_tools.py runs it unmodified against a local arXiv stand-in); the loop,
    its body and feedback edge are the starter's own."""
    flow = starter("1.8.4", "Research Translation Loop.json")
    graph = flow["data"]
    arxiv = next(n for n in graph["nodes"] if n["data"].get("type") == "ArXivComponent")
    loop = next(n for n in graph["nodes"] if n["data"].get("type") == "LoopComponent")
    graph["nodes"] = [n for n in graph["nodes"] if n is not arxiv] + rows_source(rows)
    graph["edges"] = [
        e for e in graph["edges"] if arxiv["id"] not in (e["source"], e["target"])
    ] + rows_edges(loop["id"], "data")
    return flow


def with_kind(flow: dict[str, Any], old: str, new: str, **values: Any) -> dict[str, Any]:
    """The flow with its first ``old`` node turned into a ``new`` node with these values."""
    flow = clone(flow)
    target = next(n for n in flow["data"]["nodes"] if n["data"].get("type") == old)
    target["data"]["type"] = new
    template = target["data"]["node"]["template"]
    for name, value in values.items():
        template.setdefault(name, {"type": "str"})["value"] = value
    return flow
