"""The components added for LangFlow 1.8-1.13 coverage, run in process against llm-sim:
what each sends to the model and returns, and the bounds on Loop and Batch Run."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from flowfleet.llm_sim import reply_text
from flows.base import FlowInput, FlowValidationError, HistoryMessage
from flows.langflow.compiler import compile_langflow
from flows.langflow.components import Message, as_text, model_spec
from flows.langflow.data_components import (
    match_route,
    router_prompt,
    to_data,
    to_dataframe,
    to_message,
)
from flows.langflow.describe import describe
from flows.langflow.providers import PROVIDER_COMPONENTS, UnknownProvider, model_choice
from shared.providers import provider_api
from shared.settings import get_settings
from tests.flows.conftest import sim_requests
from tests.flows.coverage_nodes import (
    loop_starter,
    model_field,
    node,
    rows_edges,
    rows_source,
    starter,
    with_kind,
)
from tests.flows.langflow_fixtures import load
from tests.flows.langflow_nodes import edge

ROWS = [
    {"title": "Queues", "summary": "Work waits its turn."},
    {"title": "Leases", "summary": "Work is held for a while."},
    {"title": "Retries", "summary": "Work is tried again."},
]


def _roles(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in request["messages"]]


# --- formats: which provider and model each release's fields name ---------------------


@pytest.mark.parametrize(
    ("kind", "values", "provider", "model"),
    [
        # 1.8+ ModelInput (a list with the selected {provider, name, metadata})
        (
            "LanguageModelComponent",
            {"model": model_field("Anthropic", "claude-x")[1]},
            "anthropic",
            "claude-x",
        ),
        (
            "StructuredOutput",
            {"model": model_field("Google Generative AI", "gemini-2")[1]},
            "google",
            "gemini-2",
        ),
        (
            "BatchRunComponent",
            {"model": model_field("IBM WatsonX", "granite")[1]},
            "ibm-watsonx",
            "granite",
        ),
        ("Agent", {"model": model_field("Ollama", "llama3")[1]}, "ollama", "llama3"),
        # 1.12+ starters: the field is exported empty; the deployment's default model
        ("LanguageModelComponent", {"model": [], "provider": "", "model_name": ""}, None, None),
        # 1.6/1.7 provider dropdown
        (
            "LanguageModelComponent",
            {"provider": "Google", "model_name": "gemini-1.5"},
            "google",
            "gemini-1.5",
        ),
        (
            "LanguageModelComponent",
            {"provider": "OpenAI", "model_name": "gpt-4o"},
            "openai",
            "gpt-4o",
        ),
        # 1.0-1.7 Agent: agent_llm names the provider
        ("Agent", {"agent_llm": "Anthropic", "model_name": "claude-3"}, "anthropic", "claude-3"),
        ("Agent", {"agent_llm": "Groq", "model_name": "llama-3.1"}, "groq", "llama-3.1"),
        # provider components: the kind is the provider
        ("GroqModel", {"model_name": "llama-3.1-8b"}, "groq", "llama-3.1-8b"),
        ("AzureOpenAIModel", {"azure_deployment": "prod-gpt4"}, "azure", "prod-gpt4"),
        ("xAIModel", {"model_name": "grok-2"}, "xai", "grok-2"),
        ("OpenAIModel", {"model_name": "gpt-4o-mini"}, "openai", "gpt-4o-mini"),
    ],
)
def test_each_format_names_provider_and_model(
    kind: str, values: dict[str, Any], provider: str | None, model: str | None
) -> None:
    choice = model_choice(kind, values)
    assert (choice.provider, choice.model_name) == (provider, model)
    if kind not in ("Agent",):
        spec = model_spec(kind, values)
        assert (spec.provider, spec.model_name) == (provider, model)


def test_agent_llm_custom_means_a_connected_model() -> None:
    assert model_choice("Agent", {"agent_llm": "Custom"}).connected


def test_reasoning_models_of_the_metadata_get_no_temperature() -> None:
    values = {"model": model_field("OpenAI", "gpt-5.1", reasoning_models=["gpt-5.1"])[1]}
    assert model_spec("LanguageModelComponent", {**values, "temperature": 0.1}).temperature is None


def test_an_unknown_provider_is_named() -> None:
    with pytest.raises(UnknownProvider) as info:
        model_choice("LanguageModelComponent", {"model": model_field("Acme", "x")[1]})
    assert (info.value.name, info.value.field_name) == ("Acme", "model")


def test_unknown_provider_in_model_field_is_a_problem_naming_node_and_field() -> None:
    flow = starter("1.8.4", "Basic Prompting.json")
    model = next(
        n for n in flow["data"]["nodes"] if n["data"].get("type") == "LanguageModelComponent"
    )
    model["data"]["node"]["template"]["model"]["value"][0]["provider"] = "Acme AI"
    with pytest.raises(FlowValidationError) as info:
        compile_langflow(flow)
    (problem,) = info.value.problems
    assert (problem.node_id, problem.field) == (model["id"], "model")
    assert "'Acme AI'" in problem.message


# --- provider components ----------------------------------------------------------------


@pytest.mark.parametrize("component", PROVIDER_COMPONENTS, ids=lambda c: c.kind)
async def test_provider_component_runs_as_a_model_node(sim: str, component: Any) -> None:
    """Basic Prompting with its model node exported as each provider's own component."""
    flow = with_kind(
        load("Basic Prompting.json"),
        "LanguageModelComponent",
        component.kind,
        **{component.model_field: f"{component.provider}-model"},
    )
    compiled = compile_langflow(flow)
    model_id = next(n for n in compiled.doc.nodes.values() if n.kind == component.kind).id
    assert compiled.components[model_id].spec.provider == component.provider  # type: ignore[attr-defined]
    result = await compiled.ainvoke(FlowInput("hi"), {})
    (call,) = httpx.get(sim.removesuffix("/v1") + "/_sim/calls").json()
    # Each provider is spoken to in its own API (Anthropic Messages, Gemini, else OpenAI's).
    assert call["api"] == {"google": "gemini"}.get(api := provider_api(component.provider), api)
    if call["api"] == "gemini":  # Gemini names the model in the path
        assert call["path"].endswith(f"/models/{component.provider}-model:generateContent")
        return
    request = call["body"]
    assert request["model"] == f"{component.provider}-model"
    assert _roles(request)[-1] == ("user", "hi")
    if call["api"] == "openai":
        assert result.text == reply_text(request["messages"])
    else:
        assert result.text.startswith("You said: hi")


# --- Loop -------------------------------------------------------------------------------


async def test_loop_runs_its_body_once_per_row_and_done_gathers_the_results(sim: str) -> None:
    flow = compile_langflow(loop_starter(ROWS))
    result = await flow.ainvoke(FlowInput("ai"), {})
    requests = sim_requests(sim)
    assert [_roles(r) for r in requests] == [
        [("user", f"Title: {row['title']}\nSummary: {row['summary']}")] for row in ROWS
    ]
    assert all(r["model"] == "gpt-5.1" and "temperature" not in r for r in requests)
    done = [{"text": reply_text(r["messages"])} for r in requests]
    # flowfleet's ChatOutput renders rows as JSON blocks (LangFlow: a Markdown table).
    assert result.text == as_text(done)


async def test_loop_over_its_bound_fails_naming_the_setting(
    sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWFLEET_LANGFLOW_LOOP_MAX_ITEMS", "2")
    get_settings.cache_clear()
    flow = compile_langflow(loop_starter(ROWS))
    with pytest.raises(ValueError, match="FLOWFLEET_LANGFLOW_LOOP_MAX_ITEMS"):
        await flow.ainvoke(FlowInput("ai"), {})
    assert sim_requests(sim) == []


# --- Batch Run --------------------------------------------------------------------------


def _batch_flow(column: str = "title") -> dict[str, Any]:
    nodes = [
        *rows_source(ROWS),
        node(
            "BatchRun-1",
            "BatchRunComponent",
            model=model_field("OpenAI", "gpt-4.1-mini"),
            system_message=("str", "One word.", ["Message"]),
            column_name=("str", column, ["Message"]),
            output_column_name=("str", "brief", ["Message"]),
            df=("other", "", ["DataFrame", "Table"]),
        ),
        node(
            "Parser-1",
            "ParserComponent",
            pattern="{title}: {brief}",
            sep="\n",
            input_data=("other", "", ["DataFrame", "Data"]),
        ),
        node("ChatOutput-1", "ChatOutput", input_value=("str", "", ["Message"])),
    ]
    edges = [
        *rows_edges("BatchRun-1", "df"),
        edge("BatchRun-1", "batch_results", "Parser-1", "input_data"),
        edge("Parser-1", "parsed_text", "ChatOutput-1", "input_value"),
    ]
    return {"nodes": nodes, "edges": edges}


async def test_batch_run_asks_the_model_once_per_row(sim: str) -> None:
    result = await compile_langflow(_batch_flow()).ainvoke(FlowInput(None), {})
    requests = sim_requests(sim)
    assert sorted(_roles(r)[1][1] for r in requests) == sorted(row["title"] for row in ROWS)
    assert all(_roles(r)[0] == ("system", "One word.") for r in requests)
    assert all(r["model"] == "gpt-4.1-mini" for r in requests)
    replies = {_roles(r)[1][1]: reply_text(r["messages"]) for r in requests}
    assert result.text == "\n".join(f"{row['title']}: {replies[row['title']]}" for row in ROWS)


async def test_batch_run_without_a_column_sends_each_row_as_toml(sim: str) -> None:
    await compile_langflow(_batch_flow(column="")).ainvoke(FlowInput(None), {})
    texts = sorted(_roles(r)[1][1] for r in sim_requests(sim))
    assert (
        texts[0]
        == '[title]\nvalue = "Leases"\n\n[summary]\nvalue = "Work is held for a while."\n\n'
    )


async def test_batch_run_over_its_bound_fails_naming_the_setting(
    sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWFLEET_LANGFLOW_BATCH_MAX_ROWS", "2")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="FLOWFLEET_LANGFLOW_BATCH_MAX_ROWS"):
        await compile_langflow(_batch_flow()).ainvoke(FlowInput(None), {})
    assert sim_requests(sim) == []


# --- Type Convert -----------------------------------------------------------------------


def test_type_convert_follows_langflow() -> None:
    assert to_data(Message("hi")) == {"text": "hi"}
    assert to_data(Message('{"a": 1}'), auto_parse=True) == {"a": 1}
    assert to_data(Message('[{"a": 1}]'), auto_parse=True) == {"records": [{"a": 1}]}
    assert to_data(Message("a,b\n1,2"), auto_parse=True) == {"records": [{"a": "1", "b": "2"}]}
    assert to_data([{"a": 1}]) == {"results": [{"a": 1}]}
    assert to_message({"text": "t", "x": 1}).text == "t"
    assert to_message([{"a": 1, "b": "x|y"}]).text == "| a | b |\n|:---|:---|\n| 1 | x\\|y |"
    assert to_dataframe(Message('[{"a": 1}, {"a": 2}]'), auto_parse=True) == [{"a": 1}, {"a": 2}]
    assert to_dataframe({"a": 1}) == [{"a": 1}]


# --- memory -----------------------------------------------------------------------------


async def test_external_memory_and_store_mode_use_the_session_history(sim: str) -> None:
    """Memory Chatbot with a RedisChatMemory on Message History's memory handle, and a
    Message History in Store mode before the output: history comes from the session (the
    Redis server named in the node is never contacted), the stored message passes on."""
    flow = starter("1.8.4", "Memory Chatbot.json")
    graph = flow["data"]
    memory = next(n for n in graph["nodes"] if n["data"].get("type") == "Memory")
    model = next(n for n in graph["nodes"] if n["data"].get("type") == "LanguageModelComponent")
    chat_out = next(n for n in graph["nodes"] if n["data"].get("type") == "ChatOutput")
    graph["nodes"] += [
        node("RedisChatMemory-1", "RedisChatMemory", host="10.0.0.1", port=("int", 6379, [])),
        node("Memory-store", "Memory", mode="Store", message=("str", "", ["Message"])),
    ]
    graph["edges"] = [
        e
        for e in graph["edges"]
        if not (e["source"] == model["id"] and e["target"] == chat_out["id"])
    ] + [
        edge("RedisChatMemory-1", "memory", memory["id"], "memory"),
        edge(model["id"], "text_output", "Memory-store", "message"),
        edge("Memory-store", "stored_messages", chat_out["id"], "input_value"),
    ]
    history = (HistoryMessage("user", "My name is Ada"), HistoryMessage("assistant", "Hi Ada"))
    result = await compile_langflow(flow).ainvoke(FlowInput("Who am I?", history=history), {})
    (request,) = sim_requests(sim)
    assert "User: My name is Ada\nAI: Hi Ada" in request["messages"][0]["content"]
    assert result.text == reply_text(request["messages"])


async def test_store_message_passes_the_message_on(sim: str) -> None:
    flow = {
        "nodes": [
            node("ChatInput-1", "ChatInput", input_value=""),
            node("StoreMessage-1", "StoreMessage", message=("str", "", ["Message"])),
            node("ChatOutput-1", "ChatOutput", input_value=("str", "", ["Message"])),
        ],
        "edges": [
            edge("ChatInput-1", "message", "StoreMessage-1", "message"),
            edge("StoreMessage-1", "stored_messages", "ChatOutput-1", "input_value"),
        ],
    }
    result = await compile_langflow(flow).ainvoke(FlowInput("remember this"), {})
    assert result.text == "remember this"
    assert sim_requests(sim) == []


def test_as_text_of_rows_is_json() -> None:
    assert json.loads(as_text({"a": 1}).strip("`json\n")) == {"a": 1}


# --- Smart Router -----------------------------------------------------------------------

ROUTES = [
    {"route_category": "Positive", "route_description": "Praise", "output_value": ""},
    {"route_category": "Negative", "route_description": "", "output_value": "Sorry!"},
]


def _router_flow(*, enable_else: bool) -> dict[str, Any]:
    return {
        "nodes": [
            node("ChatInput-1", "ChatInput", input_value=""),
            node(
                "SmartRouter-1",
                "SmartRouter",
                model=model_field("OpenAI", "gpt-4o-mini"),
                input_text=("str", "", ["Message"]),
                routes=("table", ROUTES, []),
                enable_else_output=("bool", enable_else, []),
            ),
            node("ChatOutput-pos", "ChatOutput", input_value=("str", "", ["Message"])),
            node("ChatOutput-else", "ChatOutput", input_value=("str", "", ["Message"])),
        ],
        "edges": [
            edge("ChatInput-1", "message", "SmartRouter-1", "input_text"),
            edge("SmartRouter-1", "category_1_result", "ChatOutput-pos", "input_value"),
            edge("SmartRouter-1", "default_result", "ChatOutput-else", "input_value"),
        ],
    }


async def test_smart_router_asks_once_and_routes_no_match_to_else(sim: str) -> None:
    """The model's answer names no route: every category branch is skipped, Else gets the
    input; the request is LangFlow's classification prompt as one user message."""
    result = await compile_langflow(_router_flow(enable_else=True)).ainvoke(FlowInput("Great!"), {})
    (request,) = sim_requests(sim)
    assert _roles(request) == [("user", router_prompt("Great!", ROUTES))]
    assert request["messages"][0]["content"].startswith("You are a text classifier.")
    assert '- "Positive": Praise\n- "Negative"\n' in request["messages"][0]["content"]
    assert result.outputs == {"ChatOutput-else": "Great!"}


async def test_smart_router_without_else_runs_no_branch(sim: str) -> None:
    result = await compile_langflow(_router_flow(enable_else=False)).ainvoke(FlowInput("Hm"), {})
    assert result.outputs == {}
    assert len(sim_requests(sim)) == 1


def test_smart_router_matching_and_prompt_variables() -> None:
    assert match_route(' "negative" ', ROUTES) == 1
    assert match_route("NONE", ROUTES) is None
    prompt = router_prompt("x", ROUTES, custom="Text {input_text}; routes {routes}; {other}")
    assert prompt.endswith(
        'Additional Instructions:\nText x; routes "Positive", "Negative"; {other}'
    )


def test_smart_router_routes_need_a_name() -> None:
    flow = _router_flow(enable_else=True)
    flow["nodes"][1]["data"]["node"]["template"]["routes"]["value"] = [{"route_category": ""}]
    with pytest.raises(FlowValidationError) as info:
        compile_langflow(flow)
    assert [p.field for p in info.value.problems] == ["routes"]


def test_metadata_module_names_a_node_exported_without_a_type() -> None:
    """1.8+ exports name the component's class in metadata.module (bundles since 1.12): a
    node without data.type is known by it; data.type, when set, decides (a tampered type is
    not rescued by the module), and a module outside LangFlow's own names nothing."""
    flow = starter("1.13.0", "Basic Prompting.json")
    model = next(
        n for n in flow["data"]["nodes"] if n["data"].get("type") == "LanguageModelComponent"
    )
    del model["data"]["type"]
    assert compile_langflow(flow).doc.nodes[model["id"]].kind == "LanguageModelComponent"
    model["data"]["type"] = "MysteryComponent"
    with pytest.raises(FlowValidationError) as info:
        compile_langflow(flow)
    assert [p.node_id for p in info.value.problems] == [model["id"]]
    del model["data"]["type"]
    model["data"]["node"]["metadata"]["module"] = "my_package.LanguageModelComponent"
    with pytest.raises(FlowValidationError) as info:
        compile_langflow(flow)
    assert [p.node_id for p in info.value.problems] == [model["id"]]


def test_describe_lists_the_models_of_every_format() -> None:
    definition = describe("f", starter("1.8.4", "Financial Report Parser.json"))
    assert definition.models == ["claude-opus-4-5-20251101"]
    assert describe("g", starter("1.13.0", "Basic Prompting.json")).models == []


async def test_tweaks_of_the_new_fields_are_checked_before_the_run(sim: str) -> None:
    """A tweak naming an unknown provider or an unnamed Smart Router route is refused; a
    tweak to the model field builds that run's model."""
    router = compile_langflow(_router_flow(enable_else=True))
    bad_routes = {"SmartRouter-1": {"routes": [{"route_category": ""}]}}
    bad_model = {"SmartRouter-1": {"model": [{"provider": "Acme", "name": "m"}]}}
    for tweaks, field in ((bad_routes, "routes"), (bad_model, "model")):
        with pytest.raises(FlowValidationError) as info:
            await router.ainvoke(FlowInput("x", tweaks=tweaks), {})
        assert [p.field for p in info.value.problems] == [field]
    assert sim_requests(sim) == []
    good = {"SmartRouter-1": {"model": [{"provider": "Groq", "name": "llama-tweaked"}]}}
    await router.ainvoke(FlowInput("x", tweaks=good), {})
    assert [r["model"] for r in sim_requests(sim)] == ["llama-tweaked"]


def test_provider_key_fields_name_a_variable_and_literal_keys_are_dropped() -> None:
    """Older provider components name their key field after the provider: a load_from_db
    value is the environment variable's name; a key typed into the export is never read."""
    flow = with_kind(
        load("Basic Prompting.json"), "LanguageModelComponent", "GoogleGenerativeAIModel"
    )
    model = next(
        n for n in flow["data"]["nodes"] if n["data"].get("type") == "GoogleGenerativeAIModel"
    )
    template = model["data"]["node"]["template"]
    template.pop("api_key", None)
    template["google_api_key"] = {"type": "str", "value": "GOOGLE_API_KEY", "load_from_db": True}
    template["anthropic_api_key"] = {"type": "str", "value": "sk-literal-secret"}
    compiled = compile_langflow(flow)
    assert compiled.components[model["id"]].spec.api_key_env == "GOOGLE_API_KEY"  # type: ignore[attr-defined]
    assert "sk-literal-secret" not in json.dumps(compiled.values[model["id"]], default=str)
