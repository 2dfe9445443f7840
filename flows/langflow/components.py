"""flowfleet's own implementations of the supported LangFlow components, on LangChain.

Each mirrors what the LangFlow component of the same name sends and returns (facts
from LangFlow's lfx sources); none runs the code embedded in the export.

- Model (LCModelComponent): messages are ``[SystemMessage(system_message)]`` when a
  system message is set, then the input as a HumanMessage (an AIMessage when the input
  Message's sender is ``Machine``); a model's output is a Message without sender, so a
  chained model receives it as a HumanMessage.
- Prompt: LangChain f-string template (``{{``/``}}`` are literal braces); every
  variable is rendered as text, unset ones as the empty string. Prompt, Memory's
  ``template`` and Parser's ``pattern`` render through ``templates``: plain ``{name}``
  placeholders only, the rendered size capped.
- Memory (Retrieve): each earlier turn becomes a message (user: sender ``User`` and the
  ChatInput's sender name, default ``User``; assistant: sender ``Machine`` and the
  ChatOutput's sender name, default ``AI``), formatted with ``template`` (missing keys
  render empty), the last ``n_messages`` kept, joined with newlines. LangFlow stores the
  current user message before Memory reads it, so it shows the current message twice
  (in memory and as input); flowfleet's history holds earlier turns only, so it does not.
- If-Else (ConditionalRouter): evaluates its condition (``conditions``) and produces only
  the output whose case holds; the other output is ``INACTIVE`` and the compiler skips
  every node downstream of it, as LangFlow's ``stop()`` marks that branch inactive. The
  routed message is the case's message (``true_case_message``/``false_case_message``, or
  LangFlow 1.0's single ``message``), else the input text.
- Structured Output: builds LangFlow's schema (each row a field: str/int/float/bool/dict/
  list, ``multiple`` makes it a list) wrapped as ``{schema_name}`` with ``objects: [row]``
  (at least one), asks the connected model with a forced tool call (LangFlow uses
  trustcall's tool calling the same way), sends ``[system(system_prompt), user(input)]``.
  ``structured_output`` is the one object, or ``{"results": [...]}`` for several;
  ``dataframe_output`` is the objects as rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, Field, create_model

from flows.base import HistoryMessage
from flows.files import FileSource
from flows.langflow.conditions import evaluate_condition
from flows.langflow.kinds import Kind
from flows.langflow.providers import PROVIDER_BY_KIND, model_choice
from flows.langflow.templates import render_joined, render_template, template_variables
from flows.models import ModelSpec

MACHINE, USER = "Machine", "User"
REASONING_PREFIXES = ("o1", "o3", "o4")  # LangFlow sends no temperature to these


class _Inactive:
    """The value of an output on a branch LangFlow stopped (If-Else's other case)."""

    def __repr__(self) -> str:
        return "INACTIVE"


INACTIVE: Any = _Inactive()


@dataclass
class Message:
    """The value that travels along an edge, like LangFlow's Message."""

    text: str
    sender: str | None = None
    sender_name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def format_dict(self) -> dict[str, Any]:
        """The keys a LangFlow template may name for this message."""
        return {
            **self.data,
            "text": self.text,
            "sender": self.sender or "",
            "sender_name": self.sender_name or "",
        }


def as_text(value: Any) -> str:
    """Text of an edge value, as LangFlow's MessageTextInput sees it."""
    if value is None:
        return ""
    if isinstance(value, Message):
        return value.text
    if isinstance(value, list):
        return "\n".join(as_text(v) for v in value)
    if isinstance(value, dict):
        return "```json\n" + json.dumps(value, indent=2, default=str) + "\n```"
    return str(value)


@dataclass
class RunContext:
    """What every component may read during one run."""

    config: Mapping[str, Any]
    history: Sequence[HistoryMessage] = ()
    user_name: str = "User"
    ai_name: str = "AI"
    files: FileSource | None = None  # the run owner's files (File nodes read them)


class Component(Protocol):
    """A node's implementation: field values in, outputs by name out."""

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]: ...


class _ChatMessageComponent:
    """Chat Input and Chat Output: the text as a Message from the node's sender, else from
    the side's (the user's going in, the machine's coming out)."""

    sender: str
    sender_name: str

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        msg = Message(
            as_text(values.get("input_value")),
            sender=values.get("sender") or self.sender,
            sender_name=values.get("sender_name") or self.sender_name,
        )
        return {"message": msg}


class ChatInputComponent(_ChatMessageComponent):
    sender, sender_name = USER, "User"


class TextInputComponent:
    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        return {"text": Message(as_text(values.get("input_value")))}


class WebhookComponent:
    """LangFlow's Webhook: the trigger's body (its ``data``) out as Data, parsed as LangFlow
    parses it: the JSON object; ``{"payload": text}`` when it is not JSON; ``{}`` when empty.
    JSON that is not an object is ``{"payload": value}`` too (a Data holds an object)."""

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        text = as_text(values.get("data"))
        if not text.strip():
            return {"output_data": {}}
        try:
            body = json.loads(text)
        except ValueError:
            return {"output_data": {"payload": text}}
        return {"output_data": body if isinstance(body, dict) else {"payload": body}}


class ChatOutputComponent(_ChatMessageComponent):
    sender, sender_name = MACHINE, "AI"


class TextOutputComponent(TextInputComponent):
    """Text Output passes its text on as Text Input does."""


class PromptComponent:
    """Renders its template once per run (``templates``: plain {name} only, size capped)."""

    def __init__(self, template: str) -> None:
        template_variables(template)  # refuse a bad template at compile time

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        template = as_text(values.get("template"))  # tweaked or connected: checked here
        variables = {name: as_text(values.get(name)) for name in template_variables(template)}
        return {"prompt": Message(render_template(template, variables))}


class MemoryComponent:
    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        messages = [
            Message(
                m.text,
                sender=USER if m.role == "user" else MACHINE,
                sender_name=ctx.user_name if m.role == "user" else ctx.ai_name,
                data={"session_id": ""},
            )
            for m in ctx.history
        ]
        sender_type = values.get("sender_type") or "Machine and User"
        if sender_type in (USER, MACHINE):
            messages = [m for m in messages if m.sender == sender_type]
        if sender_name := values.get("sender_name"):
            messages = [m for m in messages if m.sender_name == sender_name]
        n = values.get("n_messages")
        if n == 0:
            messages = []
        elif n:
            messages = messages[-n:]
        if values.get("order") == "Descending":
            messages = messages[::-1]
        template = values.get("template") or "{sender_name}: {text}"
        rows = [m.format_dict() for m in messages]
        text = render_joined(as_text(template), rows, "\n")
        return {"messages_text": Message(text), "dataframe": rows, "messages": rows}


class ParserComponent:
    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        data = values.get("input_data")
        if values.get("mode") == "Stringify":
            return {"parsed_text": Message(as_text(data))}
        items = data if isinstance(data, list) else [data]
        pattern = as_text(values.get("pattern"))
        rows = []
        for item in items:
            keys = item.format_dict() if isinstance(item, Message) else item
            rows.append(keys if isinstance(keys, dict) else {"text": as_text(item)})
        sep = values.get("sep")
        text = render_joined(pattern, rows, "\n" if sep is None else str(sep))
        return {"parsed_text": Message(text)}


class CombineTextComponent:
    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        delimiter = values.get("delimiter")
        delimiter = " " if delimiter is None else as_text(delimiter)
        text = delimiter.join([as_text(values.get("text1")), as_text(values.get("text2"))])
        return {"combined_text": Message(text)}


class ConditionalRouterComponent:
    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        input_text = as_text(values.get("input_text"))
        holds = evaluate_condition(
            input_text,
            as_text(values.get("match_text")),
            str(values.get("operator") or "equals"),
            case_sensitive=values.get("case_sensitive") is not False,
        )
        active, inactive = (
            ("true_result", "false_result") if holds else ("false_result", "true_result")
        )
        case = values.get("true_case_message" if holds else "false_case_message")
        routed = next(
            (v for v in (case, values.get("message")) if as_text(v)),
            Message(input_text),
        )
        if not isinstance(routed, Message):
            routed = Message(as_text(routed))
        return {active: routed, inactive: INACTIVE}


_SCHEMA_TYPES: dict[str, Any] = {
    "str": str,
    "text": str,
    "int": int,
    "float": float,
    "number": float,
    "bool": bool,
    "boolean": bool,
    "dict": dict[str, Any],
    "list": list[Any],
}
_TRUE = {"true", "1", "t", "y", "yes"}


def _truthy(value: Any) -> bool:
    # LangFlow's table stores "As List" as the strings "True"/"False" at times.
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def schema_model(rows: Sequence[Mapping[str, Any]], schema_name: str) -> type[BaseModel]:
    """LangFlow's output model: ``{schema_name}`` with ``objects``, a list of row objects."""
    fields: dict[str, Any] = {}
    for index, row in enumerate(rows):
        base = _SCHEMA_TYPES[str(row.get("type") or "str")]
        annotation = list[base] if _truthy(row.get("multiple")) else base  # type: ignore[valid-type]
        # Python names are positional so any column name (spaces, keywords) works as alias.
        fields[f"f{index}"] = (
            annotation,
            Field(alias=str(row["name"]), description=str(row.get("description") or "")),
        )
    config = ConfigDict(populate_by_name=True)
    item = create_model("OutputModel", __config__=config, **fields)
    name = re.sub(r"\W", "_", schema_name) or "OutputModel"
    return create_model(
        name,
        __doc__=f"A list of {schema_name}.",
        objects=(
            list[item],  # type: ignore[valid-type]
            Field(description=f"A list of {schema_name}.", min_length=1),
        ),
    )


class StructuredOutputComponent:
    """Asks the connected model for LangFlow's schema; the model object comes from an edge."""

    def __init__(self, node_id: str, model: BaseChatModel | None = None) -> None:
        self.node_id = node_id
        self.model = model  # built from the 1.8+ ``model`` field; an ``llm`` edge wins
        self._models: dict[str, type[BaseModel]] = {}

    def _schema(self, rows: Sequence[Mapping[str, Any]], schema_name: str) -> type[BaseModel]:
        key = json.dumps([rows, schema_name], sort_keys=True, default=str)
        model = self._models.get(key)
        if model is None:
            if len(self._models) > 32:  # tweaked schemas: keep the cache bounded
                self._models.clear()
            model = self._models[key] = schema_model(rows, schema_name)
        return model

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        llm = values.get("llm") or values.get("__model__") or self.model
        if not isinstance(llm, BaseChatModel):
            raise ValueError(f"{self.node_id}: connect a model's model_output to llm")
        rows = values.get("output_schema") or []
        if not rows:
            raise ValueError(f"{self.node_id}: output schema cannot be empty")
        schema_name = as_text(values.get("schema_name")) or "OutputModel"
        schema = self._schema(rows, schema_name)
        # One complete tool call, not token events: the JSON is the result, not chat text.
        if getattr(llm, "streaming", False):
            llm = llm.model_copy(update={"streaming": False})
        runnable = llm.with_structured_output(schema, method="function_calling")
        messages = model_messages(values.get("input_value"), as_text(values.get("system_prompt")))
        result = await runnable.ainvoke(messages, config=cast(RunnableConfig, dict(ctx.config)))
        objects = [
            o.model_dump(by_alias=True) if isinstance(o, BaseModel) else o
            for o in getattr(result, "objects", None) or []
        ]
        if not objects:
            raise ValueError(f"{self.node_id}: the model returned no structured output")
        data = objects[0] if len(objects) == 1 else {"results": objects}
        return {"structured_output": data, "dataframe_output": objects}


def model_spec(kind: str, values: Mapping[str, Any]) -> ModelSpec:
    """The ModelSpec a model node asks for; secrets only by environment variable name.

    The provider and model come from whichever field the export's release uses (see
    ``providers``); an unset model (1.12+ starters) is the deployment's default.
    """
    choice = model_choice(kind, values)
    model_name = choice.model_name
    temperature = values.get("temperature")
    if kind != Kind.OPENAI_MODEL:
        # LangFlow's Language Model (and the provider components and the Agent, through
        # it) passes model, temperature and key; the provider components also their token
        # limit.
        if choice.reasoning or (model_name and model_name.startswith(REASONING_PREFIXES)):
            temperature = None
        provider = PROVIDER_BY_KIND.get(kind)
        max_tokens = values.get(provider.max_tokens_field if provider else "max_tokens")
        return ModelSpec(
            model_name=model_name,
            provider=choice.provider,
            api_key_env=next(
                (values[k] for k in sorted(values) if k.endswith("api_key__env") and values[k]),
                None,
            ),
            temperature=temperature,
            max_tokens=max_tokens or None,
            streaming=None,  # per run: ModelComponent.run asks for a stream when `stream` is on
        )
    return ModelSpec(
        model_name=model_name,
        provider="openai",
        base_url=values.get("openai_api_base") or None,
        api_key_env=values.get("api_key__env"),
        temperature=0.1 if temperature is None else temperature,
        max_tokens=values.get("max_tokens") or None,
        seed=values.get("seed"),
        json_mode=bool(values.get("json_mode")),
        timeout_s=float(values["timeout"]) if values.get("timeout") else None,
        model_kwargs=dict(values.get("model_kwargs") or {}),
        streaming=None,
    )


def model_messages(input_value: Any, system_message: str) -> list[BaseMessage]:
    """The messages LangFlow's LCModelComponent sends for this input and system message."""
    messages: list[BaseMessage] = []
    if system_message:
        messages.append(SystemMessage(content=system_message))
    if isinstance(input_value, Message):
        if input_value.text or input_value.sender:
            cls = AIMessage if input_value.sender == MACHINE else HumanMessage
            messages.append(cls(content=input_value.text))
    elif text := as_text(input_value):
        messages.append(HumanMessage(content=text))
    return messages


class ModelComponent:
    """A chat model node; the model is built once at compile time and reused."""

    def __init__(self, node_id: str, kind: str, model: BaseChatModel, spec: ModelSpec) -> None:
        self.node_id = node_id
        self.kind = kind
        self.model = model
        self.spec = spec
        # False when only model_output is connected: LangFlow then hands the model object
        # on and never asks it for text.
        self.text_wanted = True

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        model = values.get("__model__") or self.model
        if not self.text_wanted:
            return {"text_output": None, "model_output": model}
        messages = model_messages(values.get("input_value"), as_text(values.get("system_message")))
        if not messages:
            raise ValueError(
                f"{self.node_id}: the message you want to send to the model is empty "
                "(connect an input or set a system message)"
            )
        # LangFlow streams only when the node's `stream` is on (a tweak can turn it on per
        # run); otherwise one complete answer: no token events, and no per-chunk parsing.
        config = cast(RunnableConfig, dict(ctx.config))
        reply = await model.ainvoke(messages, config=config, stream=bool(values.get("stream")))
        return {"text_output": Message(_content_text(reply.content)), "model_output": model}


def _content_text(content: Any) -> str:
    # Content blocks (newer providers) flatten to their text parts, as LangFlow does.
    if isinstance(content, list):
        return "".join(
            b if isinstance(b, str) else str(b.get("text", ""))
            for b in content
            if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")
        )
    return str(content)


content_text = _content_text  # public for the data components (Batch Run)


SIMPLE_COMPONENTS: dict[str, type[Component]] = {
    Kind.CHAT_INPUT: ChatInputComponent,
    Kind.TEXT_INPUT: TextInputComponent,
    Kind.WEBHOOK: WebhookComponent,
    Kind.CHAT_OUTPUT: ChatOutputComponent,
    Kind.TEXT_OUTPUT: TextOutputComponent,
    Kind.MEMORY: MemoryComponent,
    Kind.PARSER: ParserComponent,
    Kind.COMBINE_TEXT: CombineTextComponent,
    Kind.CONDITIONAL_ROUTER: ConditionalRouterComponent,
}
