"""Template bombs: plain {name} placeholders only, and a cap on the rendered size."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from flows.base import FlowInput, HistoryMessage
from flows.langflow.compiler import compile_langflow
from flows.langflow.document import parse_document
from flows.langflow.templates import (
    TemplateError,
    TemplateTooLarge,
    render_joined,
    render_template,
    template_variables,
)
from flows.langflow.validation import validate_document, validate_tweaks
from shared.settings import get_settings
from tests.flows.langflow_fixtures import load
from tests.flows.langflow_nodes import edge

SPEC_BOMB = "{x:>30000000}"  # 13 bytes that format to 30 MB


def _prompt_flow(template: str, x: str = "a") -> dict[str, Any]:
    """Prompt (template, literal variable x) -> ChatOutput: no model, the prompt is the output."""
    prompt = {
        "id": "Prompt-1",
        "data": {
            "type": "Prompt",
            "node": {
                "template": {
                    "template": {"type": "prompt", "value": template},
                    "x": {"type": "str", "value": x, "input_types": ["Message"]},
                }
            },
        },
    }
    out = {"id": "ChatOutput-1", "data": {"type": "ChatOutput", "node": {"template": {}}}}
    return {
        "nodes": [prompt, out],
        "edges": [edge("Prompt-1", "prompt", "ChatOutput-1", "input_value")],
    }


@pytest.fixture
def max_rendered(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """FLOWFLEET_MAX_RENDERED_CHARS set to 10,000 for the test."""
    monkeypatch.setenv("FLOWFLEET_MAX_RENDERED_CHARS", "10000")
    get_settings.cache_clear()
    yield 10_000
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "placeholder", [SPEC_BOMB, "{x!r}", "{x!s:>9}", "{x.__class__}", "{x[0]}", "{x:{x}}", "{0}"]
)
def test_prompt_placeholders_other_than_plain_names_are_refused(placeholder: str) -> None:
    """A format spec, conversion, attribute or index is a 422 naming node, field, placeholder."""
    problems = validate_document(parse_document(_prompt_flow(f"Say {placeholder} now")))
    assert [(p.node_id, p.field) for p in problems] == [("Prompt-1", "template")]
    assert "is not allowed" in problems[0].message
    assert placeholder in problems[0].message


def test_plain_placeholders_and_literal_braces_still_work() -> None:
    """{name} and {{ }} render as LangChain's f-string prompts render them."""
    template = 'Answer {q} as JSON: {{"a": {q}}} {missing}'
    assert template_variables(template) == ["q", "missing"]
    assert render_template(template, {"q": "1"}) == 'Answer 1 as JSON: {"a": 1} '
    with pytest.raises(TemplateError, match="literal braces"):
        template_variables("a { b")


async def test_prompt_renders_and_the_rendered_size_is_capped(max_rendered: int) -> None:
    """A plain template still multiplies; past FLOWFLEET_MAX_RENDERED_CHARS the run fails."""
    flow = compile_langflow(_prompt_flow("<{x}>", x="hi"))
    assert (await flow.ainvoke(FlowInput(None), {})).text == "<hi>"
    bomb = compile_langflow(_prompt_flow("{x}" * 100, x="a" * 1_000))  # 100,000 characters
    with pytest.raises(TemplateTooLarge, match="10000 characters"):
        await bomb.ainvoke(FlowInput(None), {})


def test_rendering_stops_at_the_cap_without_building_the_whole_text() -> None:
    """Memory stays near the cap: 1,000 x 1 MB placeholders never become a 1 GB string."""
    tracemalloc.start()
    try:
        with pytest.raises(TemplateTooLarge):
            render_template("{x}" * 1_000, {"x": "a" * 1_000_000}, max_chars=2_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000  # the value and a few pieces, not 1,000 copies


def test_memory_template_and_parser_pattern_are_checked_at_upload() -> None:
    """Memory's template and Parser's pattern go through the same rule, naming their field."""
    flow = load("Memory Chatbot.json")
    memory = next(n for n in flow["data"]["nodes"] if n["data"]["type"] == "Memory")
    memory["data"]["node"]["template"]["template"]["value"] = "{sender_name}: {text:>30000000}"
    problems = validate_document(parse_document(flow))
    assert [(p.node_id, p.field) for p in problems] == [(memory["id"], "template")]
    assert "{text:>30000000}" in problems[0].message

    parser = {
        "id": "Parser-1",
        "data": {
            "type": "ParserComponent",
            "node": {"template": {"pattern": {"type": "str", "value": "Text: {text!r}"}}},
        },
    }
    chat_in = {"id": "in", "data": {"type": "ChatInput", "node": {"template": {}}}}
    flow2 = {"nodes": [chat_in, parser], "edges": [edge("in", "message", "Parser-1", "input_data")]}
    problems = validate_document(parse_document(flow2))
    assert [(p.node_id, p.field) for p in problems] == [("Parser-1", "pattern")]
    assert "{text!r}" in problems[0].message


def test_tweaked_templates_are_checked() -> None:
    """A tweak cannot bring in what an upload may not."""
    doc = parse_document(_prompt_flow("{x}"))
    (problem,) = validate_tweaks(doc, {"Prompt-1": {"template": SPEC_BOMB}})
    assert (problem.node_id, problem.field) == ("Prompt-1", "template")
    assert validate_tweaks(doc, {"Prompt-1": {"template": "<{x}>"}}) == []


async def test_memory_renders_through_the_capped_renderer(max_rendered: int) -> None:
    """Memory's rendered history counts toward the same cap (joined rows included)."""
    rows = [{"sender_name": "User", "text": "x" * 3_000}] * 3
    assert len(render_joined("{sender_name}: {text}", rows)) == 3 * 3_006 + 2
    with pytest.raises(TemplateTooLarge):
        render_joined("{sender_name}: {text}", rows * 2)
    flow = compile_langflow(load("Memory Chatbot.json"))
    history = [HistoryMessage("user", "y" * 3_000)] * 4  # 12,000 characters of history
    with pytest.raises(TemplateTooLarge):
        await flow.ainvoke(FlowInput("q", history=history), {})
