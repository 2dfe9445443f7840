"""Compiled LangFlow fixtures run against a real llm-sim over HTTP; we check what it received."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from flowfleet.llm_sim import reply_text
from flows.base import FlowInput, FlowValidationError, HistoryMessage
from flows.langflow.compiler import compile_langflow
from shared.settings import get_settings
from tests.flows.conftest import set_sim_latency, sim_requests
from tests.flows.langflow_fixtures import FIXTURE_NAMES, load, node_of


def _roles(request: dict) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in request["messages"]]


def _template(flow: dict, node_id: str) -> str:
    node = next(n for n in flow["data"]["nodes"] if n["id"] == node_id)
    return node["data"]["node"]["template"]["template"]["value"]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
async def test_every_fixture_runs(sim: str, name: str) -> None:
    """Each starter project compiles and answers with the sim's reply to its last call."""
    flow = compile_langflow(json.dumps(load(name)))
    result = await flow.ainvoke(FlowInput("hello"), {})
    requests = sim_requests(sim)
    assert requests
    assert result.text == reply_text(requests[-1]["messages"])
    assert list(result.outputs.values()) == [result.text]


async def test_basic_prompting_sends_system_then_user(sim: str) -> None:
    """Prompt wired to system_message and ChatInput to input_value give [system, user]."""
    flow_json = load("Basic Prompting.json")
    result = await compile_langflow(flow_json).ainvoke(FlowInput("What is RAG?"), {})
    (request,) = sim_requests(sim)
    assert _roles(request) == [
        ("system", _template(flow_json, "Prompt-tOH5D")),
        ("user", "What is RAG?"),
    ]
    assert request["model"] == "gpt-4o-mini"
    assert request["temperature"] == 0.1
    assert result.outputs == {"ChatOutput-8ZWWB": result.text}


async def test_prompt_chaining_passes_each_reply_on(sim: str) -> None:
    """Three calls in order, each with its prompt as system and the previous reply as user."""
    flow_json = load("Basic Prompt Chaining.json")
    result = await compile_langflow(flow_json).ainvoke(FlowInput("an idea"), {})
    first, second, third = sim_requests(sim)
    assert _roles(first) == [("system", _template(flow_json, "Prompt-RcCgD")), ("user", "an idea")]
    assert _roles(second) == [
        ("system", _template(flow_json, "Prompt-gxyFu")),
        ("user", reply_text(first["messages"])),
    ]
    assert _roles(third) == [
        ("system", _template(flow_json, "Prompt-7PuDH")),
        ("user", reply_text(second["messages"])),
    ]
    assert result.text == reply_text(third["messages"])


async def test_twitter_generator_substitutes_text_inputs(sim: str) -> None:
    """All six TextInput values fill the prompt's variables; {{ }} stay literal braces."""
    flow_json = load("Twitter Thread Generator.json")
    variables = {}
    for edge in flow_json["data"]["edges"]:
        if edge["target"] == "Prompt-JXzxV":
            source = next(n for n in flow_json["data"]["nodes"] if n["id"] == edge["source"])
            value = source["data"]["node"]["template"]["input_value"]["value"]
            variables[edge["data"]["targetHandle"]["fieldName"]] = value
    assert len(variables) == 6
    await compile_langflow(flow_json).ainvoke(FlowInput("Launch of v2"), {})
    (request,) = sim_requests(sim)
    expected_system = _template(flow_json, "Prompt-JXzxV").format(**variables)
    assert _roles(request) == [("system", expected_system), ("user", "Launch of v2")]


async def test_memory_chatbot_renders_history_in_system_prompt(sim: str) -> None:
    """Earlier turns are rendered as LangFlow does: '{sender_name}: {text}' lines."""
    flow_json = load("Memory Chatbot.json")
    history = [HistoryMessage("user", "My name is Ada"), HistoryMessage("assistant", "Hi Ada!")]
    await compile_langflow(flow_json).ainvoke(FlowInput("what is my name", history=history), {})
    (request,) = sim_requests(sim)
    template = _template(flow_json, "Prompt-9wc4j")
    assert "{memory}" in template
    expected = template.replace("{memory}", "User: My name is Ada\nAI: Hi Ada!")
    assert _roles(request) == [("system", expected), ("user", "what is my name")]


async def test_memory_n_messages_and_order(sim: str) -> None:
    """n_messages keeps the last turns; Descending puts the newest first."""
    flow_json = load("Memory Chatbot.json")
    tweaks = {"Memory-MKGtC": {"n_messages": 2, "order": "Descending"}}
    history = [HistoryMessage("user", f"m{i}") for i in range(4)]
    flow = compile_langflow(flow_json)
    await flow.ainvoke(FlowInput("q", history=history, tweaks=tweaks), {})
    (request,) = sim_requests(sim)
    assert "User: m3\nUser: m2\n" in request["messages"][0]["content"]
    assert "m1" not in request["messages"][0]["content"]


async def test_openai_api_base_is_routed(sim: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenAIModel's openai_api_base picks the backend with that base URL, not the default."""
    monkeypatch.setenv(
        "FLOWFLEET_BACKENDS",
        json.dumps(
            [
                {"name": "unreachable", "base_url": "http://127.0.0.1:9/v1"},
                {"name": "vllm", "base_url": sim},
            ]
        ),
    )
    monkeypatch.setenv("FLOWFLEET_ALLOW_ADHOC_BACKENDS", "false")
    get_settings.cache_clear()
    flow_json = load("Basic Prompting (OpenAIModel).json")
    model = node_of(flow_json, "OpenAIModel")
    model["data"]["node"]["template"]["openai_api_base"]["value"] = sim + "/"
    result = await compile_langflow(flow_json).ainvoke(FlowInput("Hello"), {})
    (request,) = sim_requests(sim)
    assert request["model"] == "gpt-4.1-mini"
    assert request["seed"] == 1
    assert result.text == reply_text(request["messages"])

    model["data"]["node"]["template"]["openai_api_base"]["value"] = "http://10.9.9.9/v1"
    with pytest.raises(FlowValidationError) as info:
        compile_langflow(flow_json)
    assert info.value.problems[0].field == "openai_api_base"


async def test_tweaks_override_fields_per_run(sim: str) -> None:
    """Tweaks change a prompt and a model parameter for one run only."""
    flow = compile_langflow(load("Basic Prompting.json"))
    tweaks = {
        "Prompt-tOH5D": {"template": "Be brief about {{braces}}."},
        "LanguageModelComponent-kBOja": {"temperature": 0.7},
    }
    await flow.ainvoke(FlowInput("x", tweaks=tweaks), {})
    await flow.ainvoke(FlowInput("x"), {})
    tweaked, plain = sim_requests(sim)
    assert tweaked["messages"][0]["content"] == "Be brief about {braces}."
    assert tweaked["temperature"] == 0.7
    assert plain["temperature"] == 0.1
    with pytest.raises(FlowValidationError):
        await flow.ainvoke(FlowInput("x", tweaks={"Nope": {"a": 1}}), {})


async def test_flow_without_chat_input_ignores_input(sim: str) -> None:
    """With no ChatInput the run's input is not sent anywhere (LangFlow does the same)."""
    flow_json = load("Basic Prompting.json")
    chat_in = node_of(flow_json, "ChatInput")
    flow_json["data"]["nodes"].remove(chat_in)
    flow_json["data"]["edges"] = [
        e for e in flow_json["data"]["edges"] if e["source"] != chat_in["id"]
    ]
    await compile_langflow(flow_json).ainvoke(FlowInput("ignored"), {})
    (request,) = sim_requests(sim)
    assert [m["role"] for m in request["messages"]] == ["system"]


async def test_literal_api_key_in_json_is_ignored(sim: str) -> None:
    """A key typed into the flow JSON is never used; the key comes from the environment."""
    flow_json = load("Basic Prompting.json")
    field = node_of(flow_json, "LanguageModelComponent")["data"]["node"]["template"]["api_key"]
    field.update({"load_from_db": False, "value": "sk-leaked"})
    compiled = compile_langflow(flow_json)
    model = compiled.components["LanguageModelComponent-kBOja"].model  # type: ignore[attr-defined]
    assert model.openai_api_key.get_secret_value() != "sk-leaked"


async def test_independent_branches_run_concurrently(sim: str) -> None:
    """Two models feeding one CombineText take about one sim latency, not two."""
    base = load("Basic Prompting.json")
    nodes = {n["data"]["type"]: n for n in base["data"]["nodes"] if n["type"] != "noteNode"}
    model_b = json.loads(json.dumps(nodes["LanguageModelComponent"]))
    model_b["id"] = "LanguageModelComponent-B"
    combine = {
        "id": "CombineText-1",
        "data": {
            "type": "CombineText",
            "node": {"template": {"delimiter": {"type": "str", "value": " | "}}},
        },
    }

    def edge(src: str, out: str, dst: str, fld: str) -> dict:
        return {
            "source": src,
            "target": dst,
            "data": {"sourceHandle": {"name": out}, "targetHandle": {"fieldName": fld}},
        }

    a, chat_in, chat_out = (
        nodes["LanguageModelComponent"]["id"],
        nodes["ChatInput"]["id"],
        nodes["ChatOutput"]["id"],
    )
    graph = {
        "nodes": [
            nodes["ChatInput"],
            nodes["LanguageModelComponent"],
            model_b,
            combine,
            nodes["ChatOutput"],
        ],
        "edges": [
            edge(chat_in, "message", a, "input_value"),
            edge(chat_in, "message", "LanguageModelComponent-B", "input_value"),
            edge(a, "text_output", "CombineText-1", "text1"),
            edge("LanguageModelComponent-B", "text_output", "CombineText-1", "text2"),
            edge("CombineText-1", "combined_text", chat_out, "input_value"),
        ],
    }
    flow = compile_langflow(graph)
    set_sim_latency(sim, 0.6)
    try:
        started = time.monotonic()
        result = await flow.ainvoke(FlowInput("hi"), {})
        elapsed = time.monotonic() - started
    finally:
        set_sim_latency(sim, 0.0)
    first, second = sim_requests(sim)
    assert result.text == f"{reply_text(first['messages'])} | {reply_text(second['messages'])}"
    assert elapsed < 1.0, f"branches ran one after the other ({elapsed:.2f}s)"


async def test_embedded_code_is_never_executed(sim: str, tmp_path: Path) -> None:
    """Code planted in template.code.value has no effect when compiling and running."""
    marker = tmp_path / "pwned"
    flow_json = load("Basic Prompting.json")
    planted = f"open({str(marker)!r}, 'w').write('x')\nimport os; os.system('touch {marker}')\n"
    for node in flow_json["data"]["nodes"]:
        if "template" in node["data"].get("node", {}):
            node["data"]["node"]["template"]["code"] = {"type": "code", "value": planted}
    result = await compile_langflow(json.dumps(flow_json)).ainvoke(FlowInput("hi"), {})
    assert result.text
    assert not marker.exists()
