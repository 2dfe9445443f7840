"""LangFlow's Agent on LangChain tool calling, and components in tool mode as its tools.

Facts from LangFlow's lfx ``AgentComponent`` (1.8-1.13) and ``component_tool``:

- Messages: ``[system(system_prompt)]`` when set, then the session's earlier turns (the last
  ``n_messages``, as the Memory component reads them: user turns as HumanMessage, answers as
  AIMessage), then the input as a HumanMessage. ``{current_date}`` (UTC, ISO),
  ``{model_name}`` and ``{optional_user_context}`` (empty) in the system prompt are replaced
  by plain text substitution, as LangFlow does (other braces stay literal).
- The loop (LangChain's ``bind_tools`` tool-calling loop, as ``create_agent`` runs it): call
  the model with the tools; run every tool call it asks for, in order, and hand each result
  back as a ToolMessage; repeat until the model answers without a tool call. ``max_iterations``
  caps the model calls (LangFlow's ModelCallLimitMiddleware): past it the answer is
  ``Model call limits exceeded: run limit (N/N)``. A tool that fails with a ToolException
  (bad arguments, a refused URL) answers the model with the error instead of failing the run
  (LangFlow's ToolRetryMiddleware continues the same way); a call naming no offered tool is
  answered with an error the model can read.
- Tools: every component connected to ``tools`` through its ``component_as_tool`` output
  (LangFlow's tool mode), named and described as the node's ``tools_metadata`` says (LangFlow
  wrote them at export; entries with ``status: false`` were switched off by the user), else
  as LangFlow names them (the output's method). ``add_current_date_tool`` adds
  ``get_current_date`` and ``add_calculator_tool`` (1.13) adds ``evaluate_expression``, each
  unless a connected tool has that name already.
- An Agent in tool mode is a tool of another agent: its argument ``input_value`` becomes the
  inner agent's input; it runs with its own model, prompt and tools.
- ``structured_response``: the agent's answer, then one forced tool call of the model for
  LangFlow's ``output_schema`` (rows as Structured Output's) with ``format_instructions`` as
  the system message; without a schema, the answer parsed as JSON (else ``{"text": ...}``).

Tool calls and results reach the worker as LangChain tool callbacks (``on_tool_start`` /
``on_tool_end`` with the run's ``config``), which it publishes as run events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel

from flows.langflow.components import (
    MACHINE,
    Message,
    RunContext,
    _content_text,
    as_text,
    schema_model,
)
from flows.langflow.specs import TOOL_OUTPUT
from flows.langflow.tool_components import CALCULATOR_TOOL, DATE_TOOL, make_tools, tool_text
from flows.langflow.tools.calculator import calculate
from flows.langflow.tools.current_date import current_date

AGENT_TOOL = (
    "message_response",
    "Agent. message_response() - Define the agent's instructions, then enter a task to "
    "complete using tools.",
    {
        "input_value": {
            "type": "string",
            "description": "The input provided by the user for the agent to process.",
        }
    },
)


def _flat_tools(value: Any) -> list[BaseTool]:
    if isinstance(value, BaseTool):
        return [value]
    if isinstance(value, list | tuple):
        return [t for item in value for t in _flat_tools(item)]
    return []


def system_text(prompt: str, model_name: str) -> str:
    """LangFlow's dynamic prompt values, replaced as plain text (other braces stay literal)."""
    for key, value in (
        ("{current_date}", datetime.now(tz=UTC).date().isoformat()),
        ("{model_name}", model_name),
        ("{optional_user_context}", ""),
    ):
        prompt = prompt.replace(key, value)
    return prompt


class AgentComponent:
    """LangFlow's Agent: a tool-calling loop over the node's model and connected tools."""

    def __init__(
        self,
        node_id: str,
        model: BaseChatModel,
        model_name: str,
        metadata: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.node_id = node_id
        self.model = model
        self.model_name = model_name
        self.metadata = metadata
        # Set by the compiler from the node's connected outputs.
        self.wanted: set[str] = {"response"}

    def _tools(self, values: Mapping[str, Any]) -> list[BaseTool]:
        tools = _flat_tools(values.get("tools"))
        builtin: list[BaseTool] = []
        if values.get("add_current_date_tool") is not False:

            async def date(args: dict[str, Any]) -> str:
                return current_date(str(args.get("timezone") or "UTC"))

            builtin += make_tools((), DATE_TOOL, date)
        if values.get("add_calculator_tool"):

            async def calc(args: dict[str, Any]) -> str:
                return tool_text(calculate(str(args.get("expression") or "")))

            builtin += make_tools((), CALCULATOR_TOOL, calc)
        names = {t.name for t in tools}
        tools += [t for t in builtin if t.name not in names]
        # Providers refuse two tools of one name: later duplicates get a numbered name.
        seen: dict[str, int] = {}
        for tool in tools:
            count = seen[tool.name] = seen.get(tool.name, 0) + 1
            if count > 1:
                tool.name = f"{tool.name}_{count}"
        return tools

    def _messages(self, values: Mapping[str, Any], ctx: RunContext) -> list[BaseMessage]:
        messages: list[BaseMessage] = []
        system = system_text(as_text(values.get("system_prompt")), self.model_name)
        if system:
            messages.append(SystemMessage(content=system))
        history = list(ctx.history)
        n = values.get("n_messages")
        if n is not None:
            history = history[-n:] if n > 0 else []
        messages += [
            HumanMessage(content=m.text) if m.role == "user" else AIMessage(content=m.text)
            for m in history
        ]
        messages.append(HumanMessage(content=as_text(values.get("input_value"))))
        return messages

    async def respond(self, values: Mapping[str, Any], ctx: RunContext) -> str:
        """The agent's final answer after its tool-calling loop."""
        model = values.get("model")
        model = model if isinstance(model, BaseChatModel) else values.get("__model__") or self.model
        tools = self._tools(values)
        by_name = {t.name: t for t in tools}
        runnable = model.bind_tools(tools) if tools else model
        config = cast(RunnableConfig, dict(ctx.config))
        messages = self._messages(values, ctx)
        limit = max(1, int(values.get("max_iterations") or 15))
        stream = bool(values.get("stream"))
        for _ in range(limit):
            reply = await runnable.ainvoke(messages, config=config, stream=stream)
            messages.append(reply)
            calls = getattr(reply, "tool_calls", None) or []
            if not calls:
                return _content_text(reply.content)
            for call in calls:
                messages.append(await self._call_tool(by_name, call, config))
        return f"Model call limits exceeded: run limit ({limit}/{limit})"

    async def _call_tool(
        self, tools: Mapping[str, BaseTool], call: ToolCall, config: RunnableConfig
    ) -> ToolMessage:
        tool = tools.get(call["name"])
        call_id = call.get("id") or ""
        if tool is None:
            known = ", ".join(tools) or "none"
            return ToolMessage(
                f"Error: {call['name']} is not a valid tool, try one of [{known}].",
                tool_call_id=call_id,
                status="error",
            )
        result = await tool.ainvoke({**call, "id": call_id}, config=config)
        if isinstance(result, ToolMessage):
            return result
        return ToolMessage(tool_text(result), tool_call_id=call_id)

    async def structured(self, text: str, values: Mapping[str, Any], ctx: RunContext) -> Any:
        """LangFlow's structured_response: the answer fitted to ``output_schema``."""
        rows = values.get("output_schema") or []
        if not rows:
            try:
                parsed = json.loads(text)
            except ValueError:
                return {"text": text}
            return parsed if isinstance(parsed, dict) else {"results": parsed}
        model = values.get("model")
        model = model if isinstance(model, BaseChatModel) else values.get("__model__") or self.model
        if getattr(model, "streaming", False):
            model = model.model_copy(update={"streaming": False})
        schema = schema_model(rows, "OutputModel")
        runnable = model.with_structured_output(schema, method="function_calling")
        messages: list[BaseMessage] = []
        if instructions := as_text(values.get("format_instructions")):
            messages.append(SystemMessage(content=instructions))
        messages.append(HumanMessage(content=text))
        config = cast(RunnableConfig, dict(ctx.config))
        result = await runnable.ainvoke(messages, config=config)
        objects = [
            o.model_dump(by_alias=True) if isinstance(o, BaseModel) else o
            for o in getattr(result, "objects", None) or []
        ]
        return objects[0] if len(objects) == 1 else {"results": objects}

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        if TOOL_OUTPUT in self.wanted:

            async def call(args: dict[str, Any]) -> str:
                inner = {**values, "input_value": str(args.get("input_value") or "")}
                try:
                    return await self.respond(inner, ctx)
                except ValueError as exc:
                    raise ToolException(str(exc)) from exc

            outputs[TOOL_OUTPUT] = make_tools(self.metadata, AGENT_TOOL, call)
        if self.wanted & {"response", "structured_response"}:
            text = await self.respond(values, ctx)
            outputs["response"] = Message(text, sender=MACHINE, sender_name="Agent")
            if "structured_response" in self.wanted:
                outputs["structured_response"] = await self.structured(text, values, ctx)
        return outputs
