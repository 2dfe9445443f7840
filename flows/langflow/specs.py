"""What flowfleet knows about each supported LangFlow component: fields, outputs, aliases.

Facts taken from LangFlow's component sources (lfx ``components/``); no LangChain here,
the API process imports this module to validate uploads.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.langflow.kinds import Kind
from flows.langflow.providers import PROVIDER_COMPONENTS

# Types an edge can carry; LangFlow's Message is accepted where Text is (old exports).
MESSAGE = "Message"
TEXT = "Text"
DATA = "Data"
DATAFRAME = "DataFrame"
LANGUAGE_MODEL = "LanguageModel"
TOOL = "Tool"
# LangFlow 1.12+ renamed Data to JSON and DataFrame to Table (same values on the wire).
TYPE_ALIASES = {"JSON": DATA, "Table": DATAFRAME}
# The output a component in LangFlow's tool mode offers: the component as an agent's tool.
TOOL_OUTPUT = "component_as_tool"


@dataclass(frozen=True)
class FieldSpec:
    """One input field of a component: its value type and what edges it accepts."""

    name: str
    type: str = "str"
    input_types: tuple[str, ...] = ()  # empty: literal only, never connected
    required: bool = False
    default: object = None


@dataclass(frozen=True)
class ComponentSpec:
    """A supported component kind and the names LangFlow used for it over versions."""

    kind: str
    display_name: str
    fields: tuple[FieldSpec, ...]
    outputs: dict[str, tuple[str, ...]]
    aliases: tuple[str, ...] = ()
    dynamic_fields: bool = False  # Prompt: one extra field per template variable
    is_model: bool = False

    def field(self, name: str) -> FieldSpec | None:
        """The named field, or None."""
        return next((f for f in self.fields if f.name == name), None)


_MSG: tuple[str, ...] = (MESSAGE,)
_CHAT_COMMON = (
    FieldSpec("should_store_message", "bool", default=True),
    FieldSpec("session_id", "str", _MSG, default=""),
    FieldSpec("files", "file"),
    FieldSpec("background_color", "str", _MSG),
    FieldSpec("chat_icon", "str", _MSG),
    FieldSpec("text_color", "str", _MSG),
)
_MODEL_COMMON = (
    FieldSpec("input_value", "str", _MSG, default=""),
    FieldSpec("system_message", "str", _MSG, default=""),
    FieldSpec("stream", "bool", default=False),
    FieldSpec("model_name", "str", default="gpt-4o-mini"),
    FieldSpec("api_key", "str", default=""),
    FieldSpec("temperature", "float", default=0.1),
)
_MODEL_OUTPUTS: dict[str, tuple[str, ...]] = {
    "text_output": _MSG,
    "model_output": (LANGUAGE_MODEL,),
}

SPECS: tuple[ComponentSpec, ...] = (
    ComponentSpec(
        Kind.CHAT_INPUT,
        "Chat Input",
        (
            FieldSpec("input_value", "str", (), default=""),
            FieldSpec("sender", "str", default="User"),
            FieldSpec("sender_name", "str", _MSG, default="User"),
            *_CHAT_COMMON,
        ),
        {"message": _MSG},
    ),
    ComponentSpec(
        Kind.TEXT_INPUT,
        "Text Input",
        (FieldSpec("input_value", "str", _MSG, default=""),),
        {"text": _MSG},
    ),
    ComponentSpec(
        # A trigger's body arrives in ``data`` (docs/schedules.md); ``curl`` and ``endpoint``
        # are LangFlow's UI hints of how to call it, read by nothing here.
        Kind.WEBHOOK,
        "Webhook",
        (
            FieldSpec("data", "str", (), default=""),
            FieldSpec("curl", "str", default=""),
            FieldSpec("endpoint", "str", default=""),
        ),
        {"output_data": (DATA,)},
    ),
    ComponentSpec(
        Kind.CHAT_OUTPUT,
        "Chat Output",
        (
            FieldSpec("input_value", "str", (DATA, DATAFRAME, MESSAGE), required=True),
            FieldSpec("sender", "str", default="Machine"),
            FieldSpec("sender_name", "str", _MSG, default="AI"),
            FieldSpec("data_template", "str", _MSG, default="{text}"),
            FieldSpec("clean_data", "bool", default=True),
            *_CHAT_COMMON,
        ),
        {"message": _MSG},
    ),
    ComponentSpec(
        Kind.TEXT_OUTPUT,
        "Text Output",
        (FieldSpec("input_value", "str", _MSG, required=True),),
        {"text": _MSG},
    ),
    ComponentSpec(
        Kind.PROMPT,
        "Prompt",
        (
            FieldSpec("template", "prompt", default=""),
            FieldSpec("tool_placeholder", "str", _MSG, default=""),
        ),
        {"prompt": _MSG},
        aliases=("Prompt Template", "PromptComponent"),
        dynamic_fields=True,
    ),
    ComponentSpec(
        Kind.LANGUAGE_MODEL,
        "Language Model",
        (
            *_MODEL_COMMON,
            FieldSpec("provider", "str", default="OpenAI"),
            FieldSpec("model", "model", (LANGUAGE_MODEL,), default=[]),
            FieldSpec("max_tokens", "int"),
        ),
        _MODEL_OUTPUTS,
        aliases=("LanguageModel",),
        is_model=True,
    ),
    ComponentSpec(
        Kind.OPENAI_MODEL,
        "OpenAI",
        (
            *_MODEL_COMMON,
            FieldSpec("openai_api_base", "str", default=""),
            FieldSpec("max_tokens", "int"),
            FieldSpec("seed", "int", default=1),
            FieldSpec("json_mode", "bool", default=False),
            FieldSpec("model_kwargs", "dict", default={}),
            FieldSpec("timeout", "int", default=700),
            FieldSpec("max_retries", "int", default=5),
            FieldSpec("output_schema", "dict", default={}),
        ),
        _MODEL_OUTPUTS,
        aliases=("OpenAIModelComponent",),
        is_model=True,
    ),
    ComponentSpec(
        Kind.MEMORY,
        "Message History",
        (
            FieldSpec("mode", "str", default="Retrieve"),
            FieldSpec("memory", "other", ("Memory",)),
            FieldSpec("message", "str", _MSG, default=""),
            FieldSpec("sender_type", "str", default="Machine and User"),
            FieldSpec("sender", "str", _MSG, default=""),
            FieldSpec("sender_name", "str", _MSG, default=""),
            FieldSpec("n_messages", "int", default=100),
            FieldSpec("session_id", "str", _MSG, default=""),
            FieldSpec("order", "str", default="Ascending"),
            FieldSpec("template", "str", _MSG, default="{sender_name}: {text}"),
        ),
        {
            "messages_text": _MSG,
            "dataframe": (DATAFRAME,),
            "messages": (DATA,),
            "stored_messages": _MSG,  # Store mode
        },
        aliases=("Message History", "MemoryComponent"),
    ),
    ComponentSpec(
        Kind.PARSER,
        "Parser",
        (
            # LangFlow's Parser takes Data/DataFrame; flowfleet also parses a Message
            # (a Message is a Data in LangFlow), which is the common chat use.
            FieldSpec("input_data", "other", (DATAFRAME, DATA, MESSAGE), required=True),
            FieldSpec("mode", "str", default="Parser"),
            FieldSpec("pattern", "str", _MSG, default="Text: {text}"),
            FieldSpec("sep", "str", _MSG, default="\n"),
            FieldSpec("clean_data", "bool", default=True),
        ),
        {"parsed_text": _MSG},
        aliases=("parser", "Parser"),
    ),
    ComponentSpec(
        Kind.COMBINE_TEXT,
        "Combine Text",
        (
            FieldSpec("text1", "str", _MSG, default=""),
            FieldSpec("text2", "str", _MSG, default=""),
            FieldSpec("delimiter", "str", _MSG, default=" "),
        ),
        {"combined_text": _MSG},
        aliases=("CombineTextComponent",),
    ),
    ComponentSpec(
        Kind.CONDITIONAL_ROUTER,
        "If-Else",
        (
            FieldSpec("input_text", "str", _MSG, required=True),
            FieldSpec("operator", "str", default="equals"),
            FieldSpec("match_text", "str", _MSG, required=True),
            FieldSpec("case_sensitive", "bool", default=True),
            FieldSpec("true_case_message", "str", _MSG, default=""),
            FieldSpec("false_case_message", "str", _MSG, default=""),
            FieldSpec("message", "str", _MSG, default=""),  # LangFlow 1.0: one routed message
            # Only meaningful in loops, which flowfleet refuses; accepted and ignored.
            FieldSpec("max_iterations", "int", default=10),
            FieldSpec("default_route", "str", default="false_result"),
        ),
        {"true_result": _MSG, "false_result": _MSG},
        aliases=("ConditionalRouterComponent", "If-Else"),
    ),
    ComponentSpec(
        Kind.STRUCTURED_OUTPUT,
        "Structured Output",
        (
            # 1.0-1.7: a connected model (llm); 1.8+: the model field (empty: the default).
            FieldSpec("llm", "other", (LANGUAGE_MODEL,)),
            FieldSpec("model", "model", (LANGUAGE_MODEL,), default=[]),
            FieldSpec("input_value", "str", _MSG, required=True),
            FieldSpec(
                "system_prompt",
                "str",
                _MSG,
                required=True,
                default="Extract structured data from the input, following the schema.",
            ),
            FieldSpec("schema_name", "str", _MSG, default=""),
            FieldSpec("output_schema", "table", required=True, default=[]),
        ),
        {"structured_output": (DATA,), "dataframe_output": (DATAFRAME,)},
        aliases=("StructuredOutputComponent",),
    ),
)

# --- LangFlow 1.8-1.13 coverage: provider model components (flows/langflow/providers.py).
# Each is a model node like LanguageModelComponent; its provider comes from its kind.
SPECS += tuple(
    ComponentSpec(
        p.kind,
        p.display_name,
        (
            *(f for f in _MODEL_COMMON if f.name != "model_name"),
            FieldSpec(p.model_field, "str", default=""),
            FieldSpec(p.max_tokens_field, "int"),
            *(FieldSpec(name, "str") for name in p.extra_fields),
        ),
        _MODEL_OUTPUTS,
        aliases=p.aliases,
        is_model=True,
    )
    for p in PROVIDER_COMPONENTS
)

# --- LangFlow 1.8-1.13 coverage: memory, data and control components
# (flows/langflow/data_components.py runs them).
EXTERNAL_MEMORY_KINDS = (
    "RedisChatMemory",
    "AstraDBChatMemory",
    "CassandraChatMemory",
    "ZepChatMemory",
    "MongoDBChatMemory",
    "MongoChatMemory",
    "ElasticsearchChatMemory",
)
_ANY_VALUE = (MESSAGE, DATA, DATAFRAME)
MAX_ROUTES = 32  # Smart Router: outputs category_1_result .. category_32_result
SPECS += (
    ComponentSpec(
        "StoreMessage",
        "Message Store",
        (
            FieldSpec("message", "str", _MSG, required=True),
            FieldSpec("memory", "other", ("Memory",)),
            FieldSpec("sender", "str", _MSG, default=""),
            FieldSpec("sender_name", "str", _MSG, default=""),
            FieldSpec("session_id", "str", _MSG, default=""),
            FieldSpec("context_id", "str", _MSG, default=""),
        ),
        {"stored_messages": _MSG},
        aliases=("StoreMessageComponent",),
    ),
    *(
        ComponentSpec(kind, kind, (), {"memory": ("Memory",)}, dynamic_fields=False)
        for kind in EXTERNAL_MEMORY_KINDS
    ),
    ComponentSpec(
        "TypeConverterComponent",
        "Type Convert",
        (
            FieldSpec("input_data", "other", _ANY_VALUE, required=True),
            FieldSpec("auto_parse", "bool", default=False),
            FieldSpec("output_type", "str", default="Message"),
        ),
        {"message_output": _MSG, "data_output": (DATA,), "dataframe_output": (DATAFRAME,)},
        aliases=("TypeConverter", "ConvertType"),
    ),
    ComponentSpec(
        "BatchRunComponent",
        "Batch Run",
        (
            # 1.4-1.7: a connected model; 1.8+: the model field (empty: the default).
            FieldSpec("model", "model", (LANGUAGE_MODEL,), default=[]),
            FieldSpec("api_key", "str", default=""),
            FieldSpec("system_message", "str", _MSG, default=""),
            FieldSpec("df", "other", (DATAFRAME,), required=True),
            FieldSpec("column_name", "str", _MSG, default=""),
            FieldSpec("output_column_name", "str", _MSG, default="model_response"),
            FieldSpec("enable_metadata", "bool", default=False),
        ),
        {"batch_results": (DATAFRAME,)},
        aliases=("BatchRun",),
    ),
    ComponentSpec(
        "SmartRouter",
        "Smart Router",
        (
            # 1.4-1.7: a connected model (llm); 1.8+: the model field (empty: the default).
            FieldSpec("llm", "other", (LANGUAGE_MODEL,)),
            FieldSpec("model", "model", (LANGUAGE_MODEL,), default=[]),
            FieldSpec("api_key", "str", default=""),
            FieldSpec("input_text", "str", _MSG, required=True),
            FieldSpec("routes", "table", required=True, default=[]),
            FieldSpec("message", "str", _MSG, default=""),
            FieldSpec("enable_else_output", "bool", default=False),
            FieldSpec("custom_prompt", "str", _MSG, default=""),
        ),
        {
            **{f"category_{i}_result": _MSG for i in range(1, MAX_ROUTES + 1)},  # one per route
            "default_result": _MSG,
        },
        aliases=("SmartRouterComponent", "LLMConditionalRouter"),
    ),
    ComponentSpec(
        "LoopComponent",
        "Loop",
        (
            FieldSpec("data", "other", _ANY_VALUE, required=True),
            # The loop body's last output comes back into ``item`` (LangFlow's loop edge).
            FieldSpec("item", "other", (MESSAGE, DATA)),
        ),
        {"item": (DATA,), "done": (DATAFRAME,)},
        aliases=("Loop",),
    ),
)
# Agents and the components an agent may use as tools (flows/langflow/agent.py, tools/).
_TOOLS: dict[str, tuple[str, ...]] = {TOOL_OUTPUT: (TOOL,)}
AGENT_SPECS: tuple[ComponentSpec, ...] = (
    ComponentSpec(
        "Agent",
        "Agent",
        (
            FieldSpec("input_value", "str", _MSG, default=""),
            FieldSpec("system_prompt", "str", _MSG, default=""),
            FieldSpec("tools", "other", (TOOL,)),
            FieldSpec("model", "model", (LANGUAGE_MODEL,)),
            FieldSpec("agent_llm", "str", default="OpenAI"),
            FieldSpec("model_name", "str", default=""),
            FieldSpec("api_key", "str", default=""),
            FieldSpec("temperature", "float"),
            FieldSpec("max_tokens", "int"),
            FieldSpec("max_iterations", "int", default=15),
            FieldSpec("n_messages", "int", default=100),
            FieldSpec("add_current_date_tool", "bool", default=True),
            FieldSpec("add_calculator_tool", "bool", default=False),
            FieldSpec("handle_parsing_errors", "bool", default=True),
            FieldSpec("agent_description", "str", _MSG, default=""),
            FieldSpec("format_instructions", "str", _MSG, default=""),
            FieldSpec("output_schema", "table", (DATAFRAME, "Table"), default=[]),
            FieldSpec("context_id", "str", _MSG, default=""),
            FieldSpec("memory", "other", ("Memory",)),
        ),
        {"response": _MSG, "structured_response": (DATA, "JSON"), **_TOOLS},
        aliases=("AgentComponent",),
    ),
    ComponentSpec(
        "CalculatorComponent",
        "Calculator",
        (FieldSpec("expression", "str", _MSG, default=""),),
        {"result": (DATA,), **_TOOLS},
        aliases=("Calculator", "CalculatorTool"),
    ),
    ComponentSpec(
        "URLComponent",
        "URL",
        (
            FieldSpec("urls", "str", _MSG, default=""),
            FieldSpec("format", "str", default="Text"),
            FieldSpec("headers", "table", default=[]),
            FieldSpec("timeout", "int", default=30),
            FieldSpec("max_depth", "int", default=1),
            FieldSpec("continue_on_failure", "bool", default=True),
        ),
        {"page_results": (DATAFRAME,), "raw_results": _MSG, **_TOOLS},
        aliases=("URL",),
    ),
    ComponentSpec(
        "UnifiedWebSearch",
        "Web Search",
        (
            FieldSpec("query", "str", _MSG, default=""),
            FieldSpec("search_mode", "str", default="Web"),
            FieldSpec("max_results", "int", default=5),
            FieldSpec("topic", "str", default=""),
        ),
        {"results": (DATAFRAME, "Table"), **_TOOLS},
    ),
    ComponentSpec(
        "TavilySearchComponent",
        "Tavily Search",
        (
            FieldSpec("query", "str", _MSG, default=""),
            FieldSpec("max_results", "int", default=5),
            FieldSpec("topic", "str", default="general"),
            FieldSpec("api_key", "str", default=""),
        ),
        {"dataframe": (DATAFRAME,), **_TOOLS},
        aliases=("TavilySearch",),
    ),
    ComponentSpec(
        "SearchComponent",
        "Search API",
        (
            FieldSpec("input_value", "str", _MSG, default=""),
            FieldSpec("max_results", "int", default=5),
            FieldSpec("api_key", "str", default=""),
        ),
        {"dataframe": (DATAFRAME,), **_TOOLS},
    ),
    ComponentSpec(
        "APIRequest",
        "API Request",
        (
            FieldSpec("url_input", "str", _MSG, default=""),
            FieldSpec("curl_input", "str", _MSG, default=""),
            FieldSpec("method", "str", default="GET"),
            FieldSpec("headers", "table", (DATA,), default=[]),
            FieldSpec("body", "table", (DATA,), default=[]),
            FieldSpec("query_params", "dict", (DATA,), default={}),
            FieldSpec("timeout", "int", default=5),
            FieldSpec("follow_redirects", "bool", default=True),
        ),
        {"data": (DATA,), **_TOOLS},
        aliases=("APIRequestComponent",),
    ),
    ComponentSpec(
        "CurrentDate",
        "Current Date",
        (FieldSpec("timezone", "str", default="UTC"),),
        {"current_date": _MSG, **_TOOLS},
        aliases=("CurrentDateComponent",),
    ),
)
SPECS = SPECS + AGENT_SPECS
# Memory Base (flows/langflow/memory_base.py), MCP tools (mcp_tools.py), arXiv (arxiv.py).
SPECS += (
    ComponentSpec(
        "MemoryBase",
        "Memory Base",
        (
            FieldSpec("memory_base", "str"),  # the LangFlow store's name: not used
            FieldSpec("search_query", "str", _MSG, default=""),
            FieldSpec("top_k", "int", default=5),
            FieldSpec("include_metadata", "bool", default=True),
            FieldSpec("filter_by_session", "bool", default=True),
        ),
        {"retrieve_data": (DATAFRAME, "Table"), **_TOOLS},
        aliases=("MemoryBaseComponent",),
    ),
    ComponentSpec(
        "MCPTools",
        "MCP Tools",
        (
            FieldSpec("mcp_server", "mcp", default={}),
            FieldSpec("tool", "str", default=""),
            FieldSpec("tool_placeholder", "str", _MSG, default=""),
            FieldSpec("headers", "dict", default={}),  # not sent: the server's are configured
            FieldSpec("use_cache", "bool", default=False),
            FieldSpec("verify_ssl", "bool", default=True),
        ),
        {**_TOOLS},
        aliases=("MCPToolsComponent",),
    ),
    ComponentSpec(
        "ArXivComponent",
        "arXiv",
        (
            FieldSpec("search_query", "str", _MSG, default=""),
            FieldSpec("search_type", "str", default="all"),
            FieldSpec("max_results", "int", default=10),
        ),
        {"dataframe": (DATAFRAME, "Table"), **_TOOLS},
        aliases=("ArXiv", "arXiv"),
    ),
)

# LangFlow's File ("Read File"): ``path`` holds flowfleet file ids (flows/langflow/file_node.py).
SPECS += (
    ComponentSpec(
        "File",
        "Read File",
        (
            FieldSpec("path", "file", default=[]),
            FieldSpec("file_path", "other", (DATA, MESSAGE)),  # refused when connected
            FieldSpec("separator", "str", default="\n\n"),
            FieldSpec("silent_errors", "bool", default=False),
            FieldSpec("ignore_unsupported_extensions", "bool", default=True),
            FieldSpec("ignore_unspecified_files", "bool", default=False),
            FieldSpec("advanced_mode", "bool", default=False),
        ),
        {"message": _MSG, "dataframe": (DATAFRAME,), "json": (DATA,), "path": _MSG},
        aliases=("FileComponent",),
    ),
)
# RAG components (Split Text, embeddings, vector stores) live in their own module.
from flows.langflow.rag_specs import rag_specs  # noqa: E402

SPECS += rag_specs()

_BY_NAME: dict[str, ComponentSpec] = {}
for _spec in SPECS:
    for _name in (_spec.kind, *_spec.aliases):
        _BY_NAME[_name] = _spec

INPUT_KINDS = frozenset({Kind.CHAT_INPUT, Kind.TEXT_INPUT})
OUTPUT_KINDS = frozenset({Kind.CHAT_OUTPUT, Kind.TEXT_OUTPUT})
# ConditionalRouter (LangFlow If-Else): its operators, and the row types of a StructuredOutput
# schema (LangFlow's build_model_from_schema names).
ROUTER_OPERATORS = (
    "equals",
    "not equals",
    "contains",
    "starts with",
    "ends with",
    "regex",
    "less than",
    "less than or equal",
    "greater than",
    "greater than or equal",
)
SCHEMA_TYPES = ("str", "int", "float", "bool", "boolean", "dict", "list", "number", "text")
# Fields whose value is a secret's name or a secret: never a literal that flowfleet uses.
SECRET_FIELDS = frozenset(
    {
        "api_key",
        "openai_api_key",
        # provider components of older releases named their key field after the provider
        "anthropic_api_key",
        "google_api_key",
        "groq_api_key",
        "mistral_api_key",
        "nvidia_api_key",
        "deepseek_api_key",
        "openrouter_api_key",
        "xai_api_key",
        "azure_api_key",
    }
)


def spec_for(component_type: str | None) -> ComponentSpec | None:
    """The spec for a LangFlow ``data.type`` (any alias), or None when unsupported."""
    if not isinstance(component_type, str):
        return None
    return _BY_NAME.get(component_type)


def accepts(output_types: tuple[str, ...], input_types: tuple[str, ...]) -> bool:
    """Whether an output of these types may feed a field accepting ``input_types``."""
    accepted = {TYPE_ALIASES.get(t, t) for t in input_types}
    if TEXT in accepted:
        accepted.add(MESSAGE)  # LangFlow 1.0 renamed Text outputs to Message
    return bool(accepted.intersection(TYPE_ALIASES.get(t, t) for t in output_types))
