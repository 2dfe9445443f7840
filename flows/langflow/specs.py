"""What flowfleet knows about each supported LangFlow component: fields, outputs, aliases.

Facts taken from LangFlow's component sources (lfx ``components/``); no LangChain here,
the API process imports this module to validate uploads.
"""

from __future__ import annotations

from dataclasses import dataclass

# Types an edge can carry; LangFlow's Message is accepted where Text is (old exports).
MESSAGE = "Message"
TEXT = "Text"
DATA = "Data"
DATAFRAME = "DataFrame"
LANGUAGE_MODEL = "LanguageModel"


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
        "ChatInput",
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
        "TextInput",
        "Text Input",
        (FieldSpec("input_value", "str", _MSG, default=""),),
        {"text": _MSG},
    ),
    ComponentSpec(
        "ChatOutput",
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
        "TextOutput",
        "Text Output",
        (FieldSpec("input_value", "str", _MSG, required=True),),
        {"text": _MSG},
    ),
    ComponentSpec(
        "Prompt",
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
        "LanguageModelComponent",
        "Language Model",
        (*_MODEL_COMMON, FieldSpec("provider", "str", default="OpenAI")),
        _MODEL_OUTPUTS,
        aliases=("LanguageModel",),
        is_model=True,
    ),
    ComponentSpec(
        "OpenAIModel",
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
        "Memory",
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
        {"messages_text": _MSG, "dataframe": (DATAFRAME,), "messages": (DATA,)},
        aliases=("Message History", "MemoryComponent"),
    ),
    ComponentSpec(
        "ParserComponent",
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
        "CombineText",
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
        "ConditionalRouter",
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
        "StructuredOutput",
        "Structured Output",
        (
            FieldSpec("llm", "other", (LANGUAGE_MODEL,), required=True),
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

# RAG components (Split Text, embeddings, vector stores) live in their own module.
from flows.langflow.rag_specs import rag_specs  # noqa: E402

SPECS += rag_specs()

_BY_NAME: dict[str, ComponentSpec] = {}
for _spec in SPECS:
    for _name in (_spec.kind, *_spec.aliases):
        _BY_NAME[_name] = _spec

INPUT_KINDS = frozenset({"ChatInput", "TextInput"})
OUTPUT_KINDS = frozenset({"ChatOutput", "TextOutput"})
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
SECRET_FIELDS = frozenset({"api_key", "openai_api_key"})


def spec_for(component_type: str | None) -> ComponentSpec | None:
    """The spec for a LangFlow ``data.type`` (any alias), or None when unsupported."""
    if not isinstance(component_type, str):
        return None
    return _BY_NAME.get(component_type)


def supported_types() -> list[str]:
    """Every accepted ``data.type`` name, aliases included."""
    return sorted(_BY_NAME)


def accepts(output_types: tuple[str, ...], input_types: tuple[str, ...]) -> bool:
    """Whether an output of these types may feed a field accepting ``input_types``."""
    accepted = set(input_types)
    if TEXT in accepted:
        accepted.add(MESSAGE)  # LangFlow 1.0 renamed Text outputs to Message
    return bool(accepted.intersection(output_types))
