"""LangFlow-shaped nodes the fixtures lack; template names as in LangFlow's sources."""

from __future__ import annotations

from typing import Any

from tests.flows.langflow_fixtures import clone, load, node_of


def _field(ftype: str, value: Any, input_types: list[str] | None = None, **extra: Any) -> dict:
    return {"type": ftype, "value": value, "input_types": input_types or [], **extra}


def router_node(
    node_id: str = "ConditionalRouter-1",
    operator: str = "equals",
    match_text: str = "yes",
    *,
    case_sensitive: bool = True,
    true_case_message: str = "",
    false_case_message: str = "",
) -> dict[str, Any]:
    """An If-Else node as LangFlow exports it."""
    template = {
        "input_text": _field("str", "", ["Message"], required=True),
        "operator": _field("str", operator, options=["equals", "regex"]),
        "match_text": _field("str", match_text, ["Message"], required=True),
        "case_sensitive": _field("bool", case_sensitive),
        "true_case_message": _field("str", true_case_message, ["Message"]),
        "false_case_message": _field("str", false_case_message, ["Message"]),
        "max_iterations": _field("int", 10),
        "default_route": _field("str", "false_result"),
        "code": {"type": "code", "value": "raise SystemExit('never run')"},
    }
    outputs = [
        {"name": "true_result", "types": ["Message"], "group_outputs": True},
        {"name": "false_result", "types": ["Message"], "group_outputs": True},
    ]
    return {
        "id": node_id,
        "type": "genericNode",
        "data": {
            "id": node_id,
            "type": "ConditionalRouter",
            "node": {"display_name": "If-Else", "template": template, "outputs": outputs},
        },
    }


def structured_node(
    node_id: str = "StructuredOutput-1",
    rows: list[dict[str, Any]] | None = None,
    schema_name: str = "Person",
    system_prompt: str = "Extract people.",
) -> dict[str, Any]:
    """A Structured Output node (``llm`` handle version) as LangFlow exports it."""
    template = {
        "llm": _field("other", "", ["LanguageModel"], required=True),
        "input_value": _field("str", "", ["Message"], required=True),
        "system_prompt": _field("str", system_prompt, ["Message"], required=True),
        "schema_name": _field("str", schema_name, ["Message"]),
        "output_schema": _field("table", rows if rows is not None else [], required=True),
    }
    outputs = [
        {"name": "structured_output", "types": ["Data"]},
        {"name": "dataframe_output", "types": ["DataFrame"]},
    ]
    return {
        "id": node_id,
        "type": "genericNode",
        "data": {
            "id": node_id,
            "type": "StructuredOutput",
            "node": {"display_name": "Structured Output", "template": template, "outputs": outputs},
        },
    }


def edge(src: str, out: str, dst: str, fld: str) -> dict[str, Any]:
    """An edge in the ``data.sourceHandle``/``data.targetHandle`` shape."""
    return {
        "source": src,
        "target": dst,
        "data": {"sourceHandle": {"name": out, "id": src}, "targetHandle": {"fieldName": fld}},
    }


def basic_nodes() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Fresh ChatInput, Language Model and ChatOutput nodes from Basic Prompting."""
    flow = load("Basic Prompting.json")
    return (
        clone(node_of(flow, "ChatInput")),
        clone(node_of(flow, "LanguageModelComponent")),
        clone(node_of(flow, "ChatOutput")),
    )


def with_id(node: dict[str, Any], node_id: str) -> dict[str, Any]:
    """A copy of a node under another id."""
    copy = clone(node)
    copy["id"] = copy["data"]["id"] = node_id
    return copy
