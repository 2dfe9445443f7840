"""Random graphs: describe, validate and compile either succeed or raise FlowValidationError."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.base import FlowValidationError
from flows.langflow.compiler import compile_langflow
from flows.langflow.describe import describe
from flows.langflow.document import parse_document
from flows.langflow.validation import validate_document
from tests.flows.langflow_fixtures import FIXTURE_NAMES, load
from tests.flows.langflow_nodes import router_node, structured_node

# Real node templates of every known type, plus junk.
_POOL: list[dict[str, Any]] = []
for _name in FIXTURE_NAMES:
    for _node in load(_name)["data"]["nodes"]:
        if _node["type"] != "noteNode" and _node["data"]["type"] not in {
            n["data"]["type"] for n in _POOL
        }:
            _POOL.append(_node)
_POOL += [
    router_node(),
    router_node(operator="regex", match_text=r"(a)\1"),  # RE2 refuses it
    structured_node(rows=[{"name": "a", "type": "int"}]),
    structured_node(rows=[{"name": "", "type": "date"}]),
]
_JUNK: list[Any] = [
    {"id": "J", "data": {"type": "NotAComponent", "node": {"template": {}}}},
    {"id": "K", "data": {"type": None}},
    {"id": "L"},
    {"type": "noteNode", "id": "N"},
    "not a node",
]
_FIELDS = [
    "input_value",
    "system_message",
    "template",
    "memory",
    "text1",
    "input_text",
    "llm",
    "nope",
    None,
]
_OUTPUTS = [
    "message",
    "text_output",
    "model_output",
    "prompt",
    "messages_text",
    "text",
    "true_result",
    "structured_output",
    "x",
    None,
]


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, Any]:
    picks = draw(st.lists(st.sampled_from(_POOL + _JUNK), min_size=0, max_size=7))
    nodes = []
    for i, pick in enumerate(picks):
        node = json.loads(json.dumps(pick))
        if isinstance(node, dict):
            node["id"] = f"n{i}"
        nodes.append(node)
    ids = [f"n{i}" for i in range(len(nodes))] + ["ghost"]
    edges = []
    for _ in range(draw(st.integers(0, 10))):
        edge: dict[str, Any] = {
            "source": draw(st.sampled_from(ids)),
            "target": draw(st.sampled_from(ids)),
        }
        if draw(st.booleans()):
            edge["data"] = {
                "sourceHandle": {"name": draw(st.sampled_from(_OUTPUTS))},
                "targetHandle": {"fieldName": draw(st.sampled_from(_FIELDS))},
            }
        else:
            edge["targetHandle"] = draw(
                st.sampled_from(["œ", "{œfieldNameœ:œinput_valueœ}", "", "[]"])
            )
        edges.append(edge)
    return {"data": {"nodes": nodes, "edges": edges}, "name": draw(st.one_of(st.none(), st.text()))}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(graph=graphs())
def test_random_graphs_fail_only_with_validation_errors(sim: str, graph: dict[str, Any]) -> None:
    """Any graph is either accepted everywhere or refused with FlowValidationError."""
    text = json.dumps(graph)
    try:
        definition = describe("g", text)
    except FlowValidationError as exc:
        problems_found = exc.problems
        accepted = False
        assert problems_found, "a refusal must say why"
    else:
        assert definition.id == "g"
        accepted = True
    try:
        problems = validate_document(parse_document(text))
        assert (not problems) == accepted
    except FlowValidationError:
        assert not accepted
    try:
        compile_langflow(text)
    except FlowValidationError:
        assert not accepted
