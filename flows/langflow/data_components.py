"""flowfleet's implementations of LangFlow's data, control and memory components.

Values on edges: a Message is ``components.Message``, a Data (1.12+: JSON) is a dict, a
DataFrame (1.12+: Table) is a list of row dicts. Facts from LangFlow's lfx sources:

- Type Convert (``converter.py``): Message -> Data is ``{"text": text}`` (with Auto Parse a
  JSON object becomes that object, a JSON array of objects or a CSV becomes
  ``{"records": [...]}``); Data -> Message is its ``text`` (else the JSON); a DataFrame as
  a Message is a Markdown table, as Data ``{"results": rows}``; Data as a DataFrame is its
  one list of rows when it holds only that, else one row.
- Batch Run (``batch_run.py``): one model call per row, ``[system(system_message)?,
  user(text)]`` where text is the ``column_name`` cell, or every cell as TOML
  (``[column]\\nvalue = "..."``) when no column is named; the result is each row plus the
  ``output_column_name`` column and ``batch_index``. flowfleet bounds the rows
  (``FLOWFLEET_LANGFLOW_BATCH_MAX_ROWS``: more fails the run) and the calls in flight
  (``FLOWFLEET_LANGFLOW_BATCH_CONCURRENCY``).
- Memory in Store mode, Store Message: LangFlow writes the message to its message table;
  flowfleet's session history is written by the run itself (its input and its output, owner
  scoped), so these nodes pass the message on and write nothing more.
- External chat memories (Redis, Astra DB, Cassandra, Mongo, Zep...): a ``memory`` handle
  for Message History / Store Message; flowfleet serves it from its own session history
  (the server named in the node is never contacted).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from flows.langflow.components import (
    INACTIVE,
    Component,
    Message,
    RunContext,
    as_text,
    content_text,
)
from flows.langflow.specs import EXTERNAL_MEMORY_KINDS, MAX_ROUTES


class SessionMemory:
    """An external chat memory node's value: flowfleet's own session history stands in."""

    def __repr__(self) -> str:
        return "SessionMemory()"


SESSION_MEMORY = SessionMemory()


def _auto_parse(text: str) -> dict[str, Any] | None:
    text = text.lstrip("\ufeff").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    if isinstance(parsed, list) and all(isinstance(item, dict) for item in parsed):
        return {"records": parsed}
    lines = text.split("\n")
    if len(lines) >= 2 and "," in lines[0]:
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows:
            return {"records": rows}
    return None


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as a Markdown pipe table (LangFlow's DataFrame -> Message)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(str(k) for k in row if str(k) not in columns)
    if not columns:
        return ""

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("|", "\\|").replace("\n", "<br/>")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(":---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def to_message(value: Any) -> Message:
    """LangFlow's conversion of Message/Data/DataFrame to a Message."""
    if isinstance(value, Message):
        return value
    if isinstance(value, dict):
        text = value.get("text")
        return Message(text if isinstance(text, str) else json.dumps(value, default=str))
    if isinstance(value, list):
        return Message(
            markdown_table([r if isinstance(r, dict) else {"text": as_text(r)} for r in value])
        )
    return Message(as_text(value))


def to_data(value: Any, *, auto_parse: bool = False) -> dict[str, Any]:
    """LangFlow's conversion to Data (a dict)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {"results": [r if isinstance(r, dict) else {"text": as_text(r)} for r in value]}
    text = as_text(value)
    return (_auto_parse(text) if auto_parse else None) or {"text": text}


def to_dataframe(value: Any, *, auto_parse: bool = False) -> list[dict[str, Any]]:
    """LangFlow's conversion to a DataFrame (a list of row dicts)."""
    if isinstance(value, list):
        return [r if isinstance(r, dict) else to_data(r) for r in value]
    data = to_data(value, auto_parse=auto_parse)
    only = next(iter(data.values())) if len(data) == 1 else None
    if isinstance(only, list) and all(isinstance(r, dict) for r in only):
        return list(only)
    return [data]


class TypeConverterComponent:
    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        value = values.get("input_data")
        if isinstance(value, list) and value and not all(isinstance(v, dict) for v in value):
            value = value[0]  # several edges: LangFlow converts the first
        if isinstance(value, str):
            value = Message(value)
        auto = bool(values.get("auto_parse"))
        return {
            "message_output": to_message(value),
            "data_output": to_data(value, auto_parse=auto),
            "dataframe_output": to_dataframe(value, auto_parse=auto),
        }


def toml_row(row: Mapping[str, Any]) -> str:
    """A row as LangFlow's Batch Run formats it: one TOML table per column."""
    return "".join(
        f"[{json.dumps(str(k)) if not str(k).replace('_', '').replace('-', '').isalnum() else k}]\n"
        f"value = {json.dumps(str(v), ensure_ascii=False)}\n\n"
        for k, v in row.items()
    )


class BatchRunComponent:
    """One model call per DataFrame row; bounded rows and calls in flight."""

    def __init__(
        self, node_id: str, model: BaseChatModel | None, *, max_rows: int, concurrency: int
    ) -> None:
        self.node_id = node_id
        self.model = model
        self.max_rows = max_rows
        self.concurrency = max(1, concurrency)

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        model = values.get("model") if isinstance(values.get("model"), BaseChatModel) else None
        model = model or values.get("__model__") or self.model
        if not isinstance(model, BaseChatModel):
            raise ValueError(f"{self.node_id}: choose a model for Batch Run")
        rows = to_dataframe(values.get("df"))
        if len(rows) > self.max_rows:
            raise ValueError(
                f"{self.node_id}: Batch Run got {len(rows)} rows, more than the "
                f"{self.max_rows} allowed (FLOWFLEET_LANGFLOW_BATCH_MAX_ROWS)"
            )
        column = as_text(values.get("column_name"))
        if column and rows and any(column not in r for r in rows):
            available = ", ".join(sorted({str(k) for r in rows for k in r}))
            raise ValueError(
                f"{self.node_id}: column {column!r} not found in the DataFrame; "
                f"available columns: {available}"
            )
        system = as_text(values.get("system_message"))
        out_column = as_text(values.get("output_column_name")) or "model_response"
        config = cast(RunnableConfig, dict(ctx.config))
        gate = asyncio.Semaphore(self.concurrency)

        async def ask(row: Mapping[str, Any]) -> str:
            text = str(row[column]) if column else toml_row(row)
            messages: list[BaseMessage] = [SystemMessage(system)] if system else []
            messages.append(HumanMessage(text))
            async with gate:
                reply = await model.ainvoke(messages, config=config)
            return content_text(reply.content)

        answers = await asyncio.gather(*(ask(r) for r in rows))
        results = []
        for index, (row, answer) in enumerate(zip(rows, answers, strict=True)):
            result = {**row, out_column: answer, "batch_index": index}
            if values.get("enable_metadata"):
                result["metadata"] = {
                    "has_system_message": bool(system),
                    "input_length": len(str(row.get("text_input", ""))),
                    "response_length": len(answer),
                    "processing_status": "success",
                }
            results.append(result)
        return {"batch_results": results}


class StoreMessageComponent:
    """Store Message, and Message History in Store mode: the message passes on (see above)."""

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        message = values.get("message")
        if not isinstance(message, Message):
            message = Message(as_text(message))
        return {"stored_messages": message, "messages_text": message}


class ExternalMemoryComponent:
    """RedisChatMemory and the like: the session history flowfleet already keeps."""

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        return {"memory": SESSION_MEMORY}


class LoopComponent:
    """LangFlow's Loop: runs its body once per item (bounded), ``done`` gathers the results.

    Items: a DataFrame's rows, a Data, or a Message as ``{"text": ...}``; more than
    ``FLOWFLEET_LANGFLOW_LOOP_MAX_ITEMS`` fails the run. Each pass's result (the value the
    body feeds back into ``item``) becomes a row of ``done`` (a Message as ``{"text"}``).
    """

    def __init__(self, node_id: str, *, max_items: int) -> None:
        self.node_id = node_id
        self.max_items = max_items

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        raise RuntimeError("a Loop is run by the compiler (iterate)")

    async def iterate(
        self, values: dict[str, Any], run_body: Callable[[dict[str, Any]], Awaitable[Any]]
    ) -> dict[str, Any]:
        data = values.get("data")
        items = [] if data is None or data == "" else to_dataframe(data)
        if len(items) > self.max_items:
            raise ValueError(
                f"{self.node_id}: Loop got {len(items)} items, more than the "
                f"{self.max_items} allowed (FLOWFLEET_LANGFLOW_LOOP_MAX_ITEMS)"
            )
        done = []
        for item in items:
            result = await run_body(item)
            if result is not None:
                done.append(to_data(result))
        return {"item": {"count": len(items), "items": items}, "done": done}


DATA_COMPONENTS: dict[str, type[Component]] = {
    "TypeConverterComponent": TypeConverterComponent,
    "StoreMessage": StoreMessageComponent,
    **dict.fromkeys(EXTERNAL_MEMORY_KINDS, ExternalMemoryComponent),
}


def router_prompt(input_text: str, routes: Sequence[Mapping[str, Any]], custom: str = "") -> str:
    """The classification prompt LangFlow's Smart Router sends as one user message."""
    lines = []
    for i, route in enumerate(routes):
        name = route.get("route_category") or f"Category {i + 1}"
        description = str(route.get("route_description") or "").strip()
        lines.append(f'- "{name}": {description}' if description else f'- "{name}"')
    prompt = (
        "You are a text classifier. Given the following text and categories, "
        "determine which category best matches the text.\n\n"
        f'Text to classify: "{input_text}"\n\n'
        "Available categories:\n" + "\n".join(lines) + "\n\n"
        "Respond with ONLY the exact category name that best matches the text. "
        'If none match well, respond with "NONE".\n\n'
        "Category:"
    )
    if custom.strip():
        names = ", ".join(
            f'"{r.get("route_category") or f"Category {i + 1}"}"' for i, r in enumerate(routes)
        )
        # Only the two documented variables are substituted (never str.format on flow text).
        extra = custom.replace("{input_text}", input_text).replace("{routes}", names)
        prompt += f"\n\nAdditional Instructions:\n{extra}"
    return prompt


def match_route(answer: str, routes: Sequence[Mapping[str, Any]]) -> int | None:
    """The index of the route the model named (case-insensitive), or None."""
    answer = answer.strip().strip('"').lower()
    return next(
        (i for i, r in enumerate(routes) if str(r.get("route_category") or "").lower() == answer),
        None,
    )


class SmartRouterComponent:
    """Smart Router (``llm_conditional_router``): the model picks a route; only that
    route's output is active (the others are INACTIVE, so their branches are skipped)."""

    def __init__(self, node_id: str, model: BaseChatModel | None) -> None:
        self.node_id = node_id
        self.model = model

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        llm = values.get("llm")
        model = llm if isinstance(llm, BaseChatModel) else values.get("__model__") or self.model
        if not isinstance(model, BaseChatModel):
            raise ValueError(f"{self.node_id}: choose a model for Smart Router")
        routes = [r for r in values.get("routes") or [] if isinstance(r, Mapping)]
        input_text = as_text(values.get("input_text"))
        outputs: dict[str, Any] = {f"category_{i + 1}_result": INACTIVE for i in range(MAX_ROUTES)}
        outputs["default_result"] = INACTIVE
        index = None
        if routes:
            prompt = router_prompt(input_text, routes, as_text(values.get("custom_prompt")))
            config = cast(RunnableConfig, dict(ctx.config))
            reply = await model.ainvoke([HumanMessage(prompt)], config=config)
            index = match_route(content_text(reply.content), routes)
        override = as_text(values.get("message")).strip()
        if index is not None:
            custom = str(routes[index].get("output_value") or "").strip()
            text = override or (custom if custom.lower() != "none" else "") or input_text
            outputs[f"category_{index + 1}_result"] = Message(text)
        elif values.get("enable_else_output"):
            outputs["default_result"] = Message(override or input_text)
        return outputs
