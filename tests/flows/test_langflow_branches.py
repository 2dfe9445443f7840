"""If-Else routing and Structured Output, compiled from LangFlow-shaped nodes, run on llm-sim."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flowfleet.llm_sim import reply_text
from flows.base import FlowInput, FlowValidationError
from flows.langflow.compiler import compile_langflow
from flows.langflow.components import as_text
from flows.langflow.conditions import (
    MAX_PATTERN,
    MAX_REGEX_WORK,
    UnsafeRegex,
    compile_regex,
    evaluate_condition,
)
from flows.langflow.document import parse_document
from flows.langflow.validation import validate_document, validate_tweaks
from tests.flows.conftest import sim_requests
from tests.flows.langflow_nodes import basic_nodes, edge, router_node, structured_node, with_id

ROUTER = "ConditionalRouter-1"
TRUE_OUT, FALSE_OUT = "ChatOutput-T", "ChatOutput-F"
TRUE_MODEL, FALSE_MODEL = "gpt-4o-mini", "gpt-4.1-mini"


def _router_flow(router: dict[str, Any]) -> dict[str, Any]:
    """ChatInput -> If-Else; each case feeds its own model (told apart by name) and output."""
    chat_in, model, chat_out = basic_nodes()
    model_t, model_f = with_id(model, "Model-T"), with_id(model, "Model-F")
    model_t["data"]["node"]["template"]["model_name"]["value"] = TRUE_MODEL
    model_f["data"]["node"]["template"]["model_name"]["value"] = FALSE_MODEL
    out_t, out_f = with_id(chat_out, TRUE_OUT), with_id(chat_out, FALSE_OUT)
    return {
        "nodes": [chat_in, router, model_t, model_f, out_t, out_f],
        "edges": [
            edge(chat_in["id"], "message", ROUTER, "input_text"),
            edge(ROUTER, "true_result", "Model-T", "input_value"),
            edge(ROUTER, "false_result", "Model-F", "input_value"),
            edge("Model-T", "text_output", TRUE_OUT, "input_value"),
            edge("Model-F", "text_output", FALSE_OUT, "input_value"),
        ],
    }


CASES = [
    ("equals", "yes", "yes", True, True),
    ("equals", "yes", "Yes", True, False),
    ("equals", "yes", "Yes", False, True),
    ("not equals", "yes", "no", True, True),
    ("contains", "BC", "abcd", False, True),
    ("contains", "BC", "abcd", True, False),
    ("starts with", "ab", "abcd", True, True),
    ("ends with", "ab", "abcd", True, False),
    ("regex", r"\d+-\d+$", "12-34", True, True),
    ("regex", r"\d+", "x12", True, False),  # re.match: anchored at the start
    ("regex", "yes", "YES", False, False),  # case_sensitive does not apply to regex
    ("less than", "10", "3", True, True),  # numeric, not text, comparison
    ("less than or equal", "3", "3.0", True, True),
    ("greater than", "1", "abc", True, False),  # not a number: false
    ("greater than or equal", "10", "10", True, True),
]


@pytest.mark.parametrize(("operator", "match", "text", "case_sensitive", "holds"), CASES)
async def test_router_runs_only_the_active_branch(
    sim: str, operator: str, match: str, text: str, case_sensitive: bool, holds: bool
) -> None:
    """Each operator picks LangFlow's branch; the other model is never called or output."""
    router = router_node(operator=operator, match_text=match, case_sensitive=case_sensitive)
    result = await compile_langflow(_router_flow(router)).ainvoke(FlowInput(text), {})
    (request,) = sim_requests(sim)
    assert request["model"] == (TRUE_MODEL if holds else FALSE_MODEL)
    assert request["messages"] == [{"role": "user", "content": text}]
    active = TRUE_OUT if holds else FALSE_OUT
    assert result.outputs == {active: reply_text(request["messages"])}
    assert result.text == result.outputs[active]


async def test_router_sends_the_case_message(sim: str) -> None:
    """A set case message is what travels down the active branch."""
    router = router_node(match_text="yes", true_case_message="T!", false_case_message="F!")
    flow = compile_langflow(_router_flow(router))
    await flow.ainvoke(FlowInput("no"), {})
    await flow.ainvoke(FlowInput("yes"), {})
    false_req, true_req = sim_requests(sim)
    assert (false_req["model"], false_req["messages"][-1]["content"]) == (FALSE_MODEL, "F!")
    assert (true_req["model"], true_req["messages"][-1]["content"]) == (TRUE_MODEL, "T!")


async def test_router_tweaks_change_the_route_per_run(sim: str) -> None:
    """Tweaking operator and match_text reroutes one run; a bad tweaked regex is refused."""
    flow = compile_langflow(_router_flow(router_node(match_text="yes")))
    tweaks = {ROUTER: {"operator": "starts with", "match_text": "he"}}
    result = await flow.ainvoke(FlowInput("hello", tweaks=tweaks), {})
    assert list(result.outputs) == [TRUE_OUT]
    with pytest.raises(FlowValidationError) as info:
        await flow.ainvoke(
            FlowInput("x", tweaks={ROUTER: {"operator": "regex", "match_text": "("}}), {}
        )
    assert info.value.problems[0].field == "match_text"
    assert [r["model"] for r in sim_requests(sim)] == [TRUE_MODEL]


async def test_node_joining_both_branches_is_skipped(sim: str) -> None:
    """A node fed by the inactive branch is skipped even if the active one also feeds it."""
    flow_json = _router_flow(router_node(match_text="yes"))
    combine = {
        "id": "CombineText-1",
        "data": {"type": "CombineText", "node": {"template": {}}},
    }
    chat_out = with_id(flow_json["nodes"][4], "ChatOutput-J")
    flow_json["nodes"] += [combine, chat_out]
    flow_json["edges"] += [
        edge(ROUTER, "true_result", "CombineText-1", "text1"),
        edge(ROUTER, "false_result", "CombineText-1", "text2"),
        edge("CombineText-1", "combined_text", "ChatOutput-J", "input_value"),
    ]
    result = await compile_langflow(flow_json).ainvoke(FlowInput("yes"), {})
    assert list(result.outputs) == [TRUE_OUT]


def _problems(flow_json: dict[str, Any]) -> list[tuple[str | None, str | None, str]]:
    return [(p.node_id, p.field, p.message) for p in validate_document(parse_document(flow_json))]


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(unclosed", "missing )"),
        (r"(a)\1", "invalid escape sequence"),  # backreference: RE2 has none
        ("a(?=b)", "invalid perl operator"),  # lookahead
        ("(?<=a)b", "invalid perl operator"),  # lookbehind
        ("[a-z]{1000}[a-z]{1000}", "RE2 instructions"),
        ("a" * (MAX_PATTERN + 1), "the limit is"),
    ],
)
def test_regex_re2_refuses_is_a_validation_problem(pattern: str, why: str) -> None:
    """A literal regex RE2 cannot run (or too big a program) is refused, naming node and field."""
    flow_json = _router_flow(router_node(operator="regex", match_text=pattern))
    problems = _problems(flow_json)
    assert [(n, f) for n, f, _ in problems] == [(ROUTER, "match_text")]
    assert why in problems[0][2]
    with pytest.raises(FlowValidationError):
        compile_langflow(flow_json)


CATASTROPHIC = "(a|)" * 49 + "$"  # 2**49 paths for a backtracking engine; 200 characters


@pytest.mark.parametrize("pattern", [CATASTROPHIC, "(a+)+$", "(a|ab)*c", "(.*a){20}x"])
def test_backtracking_bombs_run_in_linear_time(pattern: str) -> None:
    """Shapes that backtrack exponentially in Python's re are accepted and answer at once."""
    assert _problems(_router_flow(router_node(operator="regex", match_text=pattern))) == []
    text = "a" * (MAX_REGEX_WORK // compile_regex(pattern).programsize - 1) + "!"
    started = time.perf_counter()
    assert evaluate_condition(text, pattern, "regex", case_sensitive=True) is False
    assert evaluate_condition("a" * 30 + "!", pattern, "regex", case_sensitive=True) is False
    # Python's re takes ~30 s on 30 copies of the first pattern; RE2 microseconds to ms.
    assert time.perf_counter() - started < 1.0


def test_regex_text_is_capped_by_program_size() -> None:
    """A pattern reads at most MAX_REGEX_WORK / program size characters; more fails the run."""
    pattern = "(?:[a-z]{0,500})*b"  # RE2's slowest shape: ~1,000 NFA threads per character
    limit = MAX_REGEX_WORK // compile_regex(pattern).programsize
    started = time.perf_counter()
    assert evaluate_condition("a" * limit, pattern, "regex", case_sensitive=True) is False
    assert time.perf_counter() - started < 3.0  # ~0.3 s on one core; generous for CI
    with pytest.raises(UnsafeRegex, match=f"at most {limit}"):
        evaluate_condition("a" * (limit + 1), pattern, "regex", case_sensitive=True)


def test_router_missing_fields_and_unknown_operator_are_problems() -> None:
    """input_text unconnected, match_text empty and an unknown operator are each reported."""
    flow_json = _router_flow(router_node(operator="between", match_text=""))
    flow_json["edges"] = [e for e in flow_json["edges"] if e["target"] != ROUTER]
    fields = sorted(f or "" for n, f, _ in _problems(flow_json) if n == ROUTER)
    assert fields == ["input_text", "match_text", "operator"]
    doc = parse_document(_router_flow(router_node()))
    (problem,) = validate_tweaks(doc, {ROUTER: {"nope": 1}})
    assert problem.field == "nope"


# ---------------------------------------------------------------- Structured Output

ROWS = [
    {"name": "name", "description": "the person", "type": "str", "multiple": "False"},
    {"name": "age", "description": "years", "type": "int", "multiple": False},
    {"name": "nick names", "description": "aliases", "type": "str", "multiple": "True"},
    {"name": "score", "description": "", "type": "float", "multiple": "False"},
    {"name": "active", "description": "", "type": "bool", "multiple": "False"},
    {"name": "extra", "description": "", "type": "dict", "multiple": "False"},
]


def _structured_flow(rows: list[dict[str, Any]], out: str = "structured_output") -> dict[str, Any]:
    chat_in, model, chat_out = basic_nodes()
    node = structured_node(rows=rows)
    return {
        "nodes": [chat_in, model, node, chat_out],
        "edges": [
            edge(chat_in["id"], "message", node["id"], "input_value"),
            edge(model["id"], "model_output", node["id"], "llm"),
            edge(node["id"], out, chat_out["id"], "input_value"),
        ],
    }


async def test_structured_output_returns_the_schema_json(sim: str) -> None:
    """One forced tool call carrying LangFlow's schema; its object is the output, as Data."""
    flow_json = _structured_flow(ROWS)
    result = await compile_langflow(flow_json).ainvoke(FlowInput("Ada, 36"), {})
    (request,) = sim_requests(sim)  # the model node itself is never asked for text
    assert request["messages"] == [
        {"role": "system", "content": "Extract people."},
        {"role": "user", "content": "Ada, 36"},
    ]
    (tool,) = request["tools"]
    assert tool["function"]["name"] == "Person"
    assert request["tool_choice"]["function"]["name"] == "Person"
    params = tool["function"]["parameters"]
    assert params["properties"]["objects"]["minItems"] == 1
    item = params["properties"]["objects"]["items"]
    assert list(item["properties"]) == [row["name"] for row in ROWS]
    assert item["properties"]["nick names"]["type"] == "array"
    assert item["properties"]["age"]["description"] == "years"
    expected = {
        "name": "Ada, 36",
        "age": 0,
        "nick names": [],
        "score": 0.0,
        "active": False,
        "extra": {},
    }
    assert result.text == as_text(expected)


async def test_structured_dataframe_output_and_tweaked_schema(sim: str) -> None:
    """dataframe_output gives the rows; a tweaked schema is used for that run only."""
    flow = compile_langflow(_structured_flow(ROWS[:1], out="dataframe_output"))
    result = await flow.ainvoke(FlowInput("Bob"), {})
    assert result.text == as_text([{"name": "Bob"}])
    tweak = {"StructuredOutput-1": {"output_schema": [{"name": "n", "type": "int"}]}}
    result = await flow.ainvoke(FlowInput("Bob", tweaks=tweak), {})
    assert result.text == as_text([{"n": 0}])
    bad = {"StructuredOutput-1": {"output_schema": [{"name": "n", "type": "date"}]}}
    with pytest.raises(FlowValidationError):
        await flow.ainvoke(FlowInput("Bob", tweaks=bad), {})
    assert len(sim_requests(sim)) == 2


def test_structured_output_validation() -> None:
    """No llm, a bad row type, an unnamed row and text into llm are problems naming the field."""
    flow_json = _structured_flow([{"name": "", "type": "str"}, {"name": "d", "type": "date"}])
    flow_json["edges"] = [
        e for e in flow_json["edges"] if e["data"]["targetHandle"]["fieldName"] != "llm"
    ]
    problems = _problems(flow_json)
    assert sorted(f or "" for _, f, _ in problems) == ["llm", "output_schema", "output_schema"]
    flow_json = _structured_flow(ROWS)
    model_id = flow_json["nodes"][1]["id"]
    flow_json["edges"][1] = edge(model_id, "text_output", "StructuredOutput-1", "llm")
    (problem,) = _problems(flow_json)
    assert "type mismatch" in problem[2]
    assert problem[1] == "llm"
    empty = _structured_flow([])
    assert [f for _, f, _ in _problems(empty)] == ["output_schema"]
