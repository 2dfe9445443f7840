"""The light half: handles, aliases, typed values, validation problems, tweaks, describe."""

from __future__ import annotations

import json
import sys

import pytest

from flows.base import FlowValidationError
from flows.langflow.describe import describe
from flows.langflow.document import decode_handle, parse_document
from flows.langflow.specs import spec_for
from flows.langflow.validation import validate_document, validate_tweaks
from flows.langflow.values import typed_value
from tests.flows.langflow_fixtures import FIXTURE_NAMES, load, node_of


def test_light_half_does_not_import_langchain() -> None:
    """The API imports the document modules; they must not pull LangChain in."""
    import subprocess

    code = (
        "import sys, flows.langflow.describe, flows.langflow.document, "
        "flows.langflow.validation, flows.langflow.values;"
        "assert not any(m.startswith('langchain') for m in sys.modules), 'langchain imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_decode_handle_reads_oe_encoded_json() -> None:
    """Top-level handle strings are JSON with œ in place of double quotes."""
    handle = "{œfieldNameœ:œinput_valueœ,œidœ:œX-1œ,œinputTypesœ:[œMessageœ],œtypeœ:œstrœ}"
    assert decode_handle(handle) == {
        "fieldName": "input_value",
        "id": "X-1",
        "inputTypes": ["Message"],
        "type": "str",
    }
    assert decode_handle("not json") == {}


def test_edges_fall_back_to_top_level_handles() -> None:
    """When edge.data lacks the handles, the œ strings give source output and target field."""
    flow = load("Basic Prompting.json")
    for edge in flow["data"]["edges"]:
        del edge["data"]
    doc = parse_document(flow)
    assert {(e.source_output, e.target_field) for e in doc.edges} == {
        ("message", "input_value"),
        ("text_output", "input_value"),
        ("prompt", "system_message"),
    }
    assert validate_document(doc) == []


def test_notes_are_dropped_and_bare_graphs_accepted() -> None:
    """noteNode entries are canvas notes; a bare {nodes, edges} graph parses too."""
    flow = load("Basic Prompting.json")
    doc = parse_document(json.dumps(flow["data"]))
    assert all(not nid.startswith(("note", "undefined")) for nid in doc.nodes)
    assert len(doc.nodes) == 4


@pytest.mark.parametrize(
    ("alias", "kind"),
    [
        ("Prompt Template", "Prompt"),
        ("Prompt", "Prompt"),
        ("parser", "ParserComponent"),
        ("ParserComponent", "ParserComponent"),
        ("OpenAIModel", "OpenAIModel"),
        ("LanguageModelComponent", "LanguageModelComponent"),
        ("Message History", "Memory"),
        ("Memory", "Memory"),
    ],
)
def test_aliases_map_to_one_component(alias: str, kind: str) -> None:
    """Type names that changed across LangFlow versions resolve to the same component."""
    spec = spec_for(alias)
    assert spec is not None
    assert spec.kind == kind


@pytest.mark.parametrize(
    ("ftype", "value", "expected"),
    [
        ("int", "", None),
        ("int", "12", 12),
        ("int", 3.0, 3),
        ("float", "", None),
        ("slider", "0.5", 0.5),
        ("bool", "true", True),
        ("bool", False, False),
        ("dict", {}, {}),
        ("dict", '{"a": 1}', {"a": 1}),
        ("NestedDict", "", {}),
        ("str", None, ""),
        ("prompt", "Hi {x}", "Hi {x}"),
    ],
)
def test_typed_value_per_field_type(ftype: str, value: object, expected: object) -> None:
    """Literal values are typed per field type; empty numbers mean unset."""
    assert typed_value(ftype, value) == expected


@pytest.mark.parametrize(("ftype", "value"), [("int", "abc"), ("int", 1.5), ("bool", "maybe")])
def test_typed_value_rejects_wrong_literals(ftype: str, value: object) -> None:
    """A value that is not of the field's type is an error, not a silent coercion."""
    with pytest.raises(ValueError, match="expected"):
        typed_value(ftype, value)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_validates_and_describes(name: str) -> None:
    """LangFlow's own starter projects are accepted as exported."""
    text = json.dumps(load(name))
    definition = describe("flow-1", text)
    assert definition.uses_input
    assert definition.inputs[0]["type"] == "chat"
    assert definition.models
    assert len(definition.version) == 16
    assert definition.uses_history == (name == "Memory Chatbot.json")


def test_describe_falls_back_to_id_and_flags_ignored_input() -> None:
    """Without a name the id is used; without ChatInput the description says input is ignored."""
    flow = load("Twitter Thread Generator.json")
    del flow["name"]
    chat_in = node_of(flow, "ChatInput")
    flow["data"]["nodes"].remove(chat_in)
    flow["data"]["edges"] = [e for e in flow["data"]["edges"] if e["source"] != chat_in["id"]]
    definition = describe("my-flow", json.dumps(flow))
    assert definition.name == "my-flow"
    assert not definition.uses_input
    assert "ignores `input`" in definition.description


def _problems(flow: dict) -> list:
    with pytest.raises(FlowValidationError) as info:
        describe("f", json.dumps(flow))
    return info.value.problems


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_unknown_component_type_is_named(name: str) -> None:
    """An unsupported data.type is reported with the node id and the type."""
    flow = load(name)
    node = node_of(flow, "ChatOutput")
    node["data"]["type"] = "PythonREPLTool"
    problems = _problems(flow)
    assert any(p.node_id == node["id"] and "PythonREPLTool" in p.message for p in problems)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_edited_node_is_rejected(name: str) -> None:
    """A node edited in the UI holds custom code; it is refused, naming node and field."""
    flow = load(name)
    node = node_of(flow, "Prompt")
    node["data"]["node"]["edited"] = True
    problems = _problems(flow)
    assert any(p.node_id == node["id"] and p.field == "code" for p in problems)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_cycle_is_rejected(name: str) -> None:
    """Feeding a ChatOutput back into the model's system message makes a cycle."""
    flow = load(name)
    model = next(
        n
        for n in flow["data"]["nodes"]
        if n["data"].get("type", "").endswith(("Model", "Component"))
    )
    out = node_of(flow, "ChatOutput")
    for edge in flow["data"]["edges"]:
        if (
            edge["target"] == model["id"]
            and edge["data"]["targetHandle"]["fieldName"] == "input_value"
        ):
            edge["source"] = out["id"]
            edge["data"]["sourceHandle"] = {"name": "message", "id": out["id"]}
    problems = _problems(flow)
    assert any("cycle" in p.message and p.node_id == model["id"] for p in problems)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_dangling_edges_are_rejected(name: str) -> None:
    """Edges to an unknown node or an unknown field name what to fix."""
    flow = load(name)
    out = node_of(flow, "ChatOutput")
    edge = next(e for e in flow["data"]["edges"] if e["target"] == out["id"])
    edge["data"]["targetHandle"]["fieldName"] = "no_such_field"
    extra = json.loads(json.dumps(edge))
    extra["target"] = "Ghost-1"
    flow["data"]["edges"].append(extra)
    problems = _problems(flow)
    assert any(p.node_id == out["id"] and p.field == "no_such_field" for p in problems)
    assert any(p.node_id == "Ghost-1" and "unknown component" in p.message for p in problems)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_type_mismatch_is_rejected(name: str) -> None:
    """A LanguageModel output cannot feed a Message field."""
    flow = load(name)
    out = node_of(flow, "ChatOutput")
    edge = next(e for e in flow["data"]["edges"] if e["target"] == out["id"])
    edge["data"]["sourceHandle"]["name"] = "model_output"
    problems = _problems(flow)
    assert any(
        p.node_id == out["id"] and p.field == "input_value" and "type mismatch" in p.message
        for p in problems
    )


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_missing_required_field_is_rejected(name: str) -> None:
    """ChatOutput's input is required: unconnected and empty, it is reported."""
    flow = load(name)
    out = node_of(flow, "ChatOutput")
    flow["data"]["edges"] = [e for e in flow["data"]["edges"] if e["target"] != out["id"]]
    problems = _problems(flow)
    assert any(p.node_id == out["id"] and p.field == "input_value" for p in problems)


def test_unknown_provider_is_rejected_naming_node_and_provider() -> None:
    """A Language Model provider dropdown (1.6/1.7) naming an unknown provider is a problem;
    a known one (Anthropic) validates and routing decides who serves it."""
    flow = load("Basic Prompting.json")
    model = node_of(flow, "LanguageModelComponent")
    model["data"]["node"]["template"]["provider"]["value"] = "Acme AI"
    problems = _problems(flow)
    assert any(
        p.node_id == model["id"] and p.field == "provider" and "'Acme AI'" in p.message
        for p in problems
    )
    model["data"]["node"]["template"]["provider"]["value"] = "Anthropic"
    describe("f", json.dumps(flow))


def test_provider_without_backend_is_rejected_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In production a provider no backend serves is a problem naming node and provider;
    in the embedded default the same flow is accepted (llm-sim speaks every provider)."""
    from shared.settings import get_settings

    flow = load("Basic Prompting.json")
    model = node_of(flow, "LanguageModelComponent")
    model["data"]["node"]["template"]["provider"]["value"] = "Anthropic"
    monkeypatch.setenv("FLOWFLEET_ENV", "production")
    monkeypatch.setenv("FLOWFLEET_WEBHOOK_SECRET", "a-production-secret-0123456789abcdef")
    monkeypatch.setenv("FLOWFLEET_BACKENDS", '[{"name": "oai", "base_url": "http://oai/v1"}]')
    get_settings.cache_clear()
    try:
        problems = _problems(flow)
        (problem,) = [p for p in problems if p.node_id == model["id"]]
        assert problem.field == "provider"
        assert "'anthropic' has no configured backend" in problem.message
        monkeypatch.setenv(
            "FLOWFLEET_BACKENDS",
            '[{"name": "oai", "base_url": "http://oai/v1"},'
            ' {"name": "claude", "base_url": "http://claude", "api": "anthropic",'
            ' "providers": ["Anthropic"]}]',
        )
        get_settings.cache_clear()
        describe("f", json.dumps(flow))  # a backend serves it now
        monkeypatch.setenv("FLOWFLEET_ENV", "embedded")
        monkeypatch.delenv("FLOWFLEET_BACKENDS")
        get_settings.cache_clear()
        describe("f", json.dumps(flow))
    finally:
        get_settings.cache_clear()


def test_all_problems_are_reported_at_once() -> None:
    """Validation returns every problem, not just the first."""
    flow = load("Basic Prompting.json")
    node_of(flow, "Prompt")["data"]["node"]["edited"] = True
    node_of(flow, "ChatOutput")["data"]["type"] = "Nope"
    assert len(_problems(flow)) >= 2


def test_validate_tweaks() -> None:
    """Tweaks name existing components and fields, with values of the field's type."""
    doc = parse_document(json.dumps(load("Basic Prompting (OpenAIModel).json")))
    assert validate_tweaks(doc, {"OpenAIModel-OcXkl": {"temperature": 0.5}}) == []
    problems = validate_tweaks(
        doc,
        {
            "Nope-1": {"x": 1},
            "OpenAIModel-OcXkl": {"no_field": 1, "max_tokens": "many"},
        },
    )
    assert {(p.node_id, p.field) for p in problems} == {
        ("Nope-1", None),
        ("OpenAIModel-OcXkl", "no_field"),
        ("OpenAIModel-OcXkl", "max_tokens"),
    }


def test_group_nodes_are_flattened() -> None:
    """A group node's inner graph is inlined and edges through its proxies remapped."""
    flow = load("Basic Prompting.json")
    nodes = {n["id"]: n for n in flow["data"]["nodes"]}
    prompt, model = nodes["Prompt-tOH5D"], nodes["LanguageModelComponent-kBOja"]
    inner_edge = next(e for e in flow["data"]["edges"] if e["source"] == prompt["id"])
    group = {
        "id": "Group-1",
        "type": "genericNode",
        "data": {
            "id": "Group-1",
            "type": "GroupNode",
            "node": {
                "display_name": "Group",
                "template": {
                    "input_value_LanguageModelComponent-kBOja": {
                        "proxy": {"id": model["id"], "field": "input_value"},
                        "value": "",
                    }
                },
                "flow": {"data": {"nodes": [prompt, model], "edges": [inner_edge]}},
            },
        },
    }
    flow["data"]["nodes"] = [
        n for n in flow["data"]["nodes"] if n["id"] not in (prompt["id"], model["id"])
    ]
    flow["data"]["nodes"].append(group)
    edges = [e for e in flow["data"]["edges"] if e is not inner_edge]
    for edge in edges:
        if edge["target"] == model["id"]:
            edge["target"] = "Group-1"
            edge["data"]["targetHandle"]["proxy"] = {"id": model["id"], "field": "input_value"}
            edge["data"]["targetHandle"]["fieldName"] = "input_value_" + model["id"]
        if edge["source"] == model["id"]:
            edge["source"] = "Group-1"
            edge["data"]["sourceHandle"]["id"] = "Group-1"
    flow["data"]["edges"] = edges
    doc = parse_document(flow)
    assert "Group-1" not in doc.nodes
    assert {(e.source, e.target, e.target_field) for e in doc.edges} == {
        ("ChatInput-SzjnT", model["id"], "input_value"),
        (model["id"], "ChatOutput-8ZWWB", "input_value"),
        (prompt["id"], model["id"], "system_message"),
    }
    assert validate_document(doc) == []
