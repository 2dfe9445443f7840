"""Components in LangFlow's tool mode, and how a node becomes an agent's tools.

A component connected to an Agent's ``tools`` through ``component_as_tool`` is offered to the
model as tools named and described as the node's exported ``tools_metadata`` says (LangFlow
wrote them at export; entries with ``status: false`` were switched off by the user), else as
LangFlow names them (the output method's name, e.g. ``evaluate_expression``). A tool's
arguments override the node's fields for that call. Expected failures (a refused URL, a
page that cannot be fetched) raise ToolException, which LangChain hands back to the model as
the tool's result instead of failing the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException

from flows.langflow.components import Message, RunContext, as_text
from flows.langflow.specs import TOOL_OUTPUT
from flows.langflow.tools.calculator import calculate
from flows.langflow.tools.current_date import current_date
from flows.langflow.tools.search import SearchFailed, web_search
from flows.langflow.tools.web import FetchFailed, fetch_pages
from shared import egress
from shared.errors import FlowfleetError
from shared.settings import get_settings

CALCULATOR_TOOL = (
    "evaluate_expression",
    "CalculatorComponent. evaluate_expression() - Perform basic arithmetic operations on a "
    "given expression.",
    {
        "expression": {
            "type": "string",
            "description": "The arithmetic expression to evaluate (e.g., '4*4*(33/22)+12-20').",
        }
    },
)
DATE_TOOL = (
    "get_current_date",
    "CurrentDate. get_current_date() - Returns the current date and time in the selected timezone.",
    {
        "timezone": {
            "type": "string",
            "description": "Timezone for the current time.",
            "default": "UTC",
        }
    },
)
ToolCall_ = Callable[[dict[str, Any]], Awaitable[str]]


def tools_metadata(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The node's exported ``tools_metadata`` entries (LangFlow's tool names and descriptions)."""
    value = (template.get("tools_metadata") or {}).get("value")
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def _schema(args: Mapping[str, Any]) -> dict[str, Any]:
    properties = {
        name: {k: v for k, v in dict(spec).items() if k != "title"}
        for name, spec in args.items()
        if isinstance(spec, Mapping)
    }
    required = [n for n, spec in properties.items() if "default" not in spec]
    return {"type": "object", "properties": properties, "required": required}


def make_tools(
    metadata: Sequence[Mapping[str, Any]],
    default: tuple[str, str, dict[str, Any]],
    call: ToolCall_,
) -> list[BaseTool]:
    """The node's tools: one per enabled ``tools_metadata`` entry, else the default one."""
    entries = [m for m in metadata if m.get("status", True) is not False] if metadata else []
    if metadata and not entries:
        return []  # every tool of the node switched off in LangFlow
    if not entries:
        entries = [{"name": default[0], "description": default[1], "args": default[2]}]
    tools: list[BaseTool] = []
    for entry in entries:
        raw = entry.get("args")
        args = raw if isinstance(raw, Mapping) else default[2]

        async def run(_call: ToolCall_ = call, **kwargs: Any) -> str:
            return await _call(kwargs)

        tools.append(
            StructuredTool(
                name=re.sub(r"[^A-Za-z0-9_-]", "_", str(entry.get("name") or default[0]))[:64],
                description=str(entry.get("description") or default[1]),
                args_schema=_schema(args),
                coroutine=run,
                handle_tool_error=True,
            )
        )
    return tools


def tool_text(value: Any) -> str:
    if isinstance(value, Message):
        return value.text
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


class CalculatorComponent:
    """LangFlow's Calculator: ``result`` (Data), or as a tool ``evaluate_expression``."""

    def __init__(self, metadata: Sequence[Mapping[str, Any]] = ()) -> None:
        self.metadata = metadata

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        async def call(args: dict[str, Any]) -> str:
            return tool_text(calculate(str(args.get("expression") or "")))

        return {
            "result": calculate(as_text(values.get("expression"))),
            TOOL_OUTPUT: make_tools(self.metadata, CALCULATOR_TOOL, call),
        }


class CurrentDateComponent:
    """LangFlow's Current Date: ``current_date`` (Message), or as a tool ``get_current_date``."""

    def __init__(self, metadata: Sequence[Mapping[str, Any]] = ()) -> None:
        self.metadata = metadata

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        async def call(args: dict[str, Any]) -> str:
            return current_date(str(args.get("timezone") or values.get("timezone") or "UTC"))

        return {
            "current_date": Message(current_date(str(values.get("timezone") or "UTC"))),
            TOOL_OUTPUT: make_tools(self.metadata, DATE_TOOL, call),
        }


URL_TOOL = (
    "fetch_content",
    "Fetch content from one or more web pages, following links recursively.",
    {
        "urls": {
            "type": "array",
            "items": {"type": "string"},
            "description": (
                "Enter one or more URLs to crawl recursively, by clicking the '+' button."
            ),
        }
    },
)


def _urls(value: Any) -> list[str]:
    if isinstance(value, list):
        return [as_text(v) for v in value]
    text = as_text(value)
    return [u for u in re_split(text) if u]


def re_split(text: str) -> list[str]:
    """URLs in a text field: one per line or separated by commas/whitespace."""
    return re.split(r"[\s,]+", text.strip()) if text.strip() else []


class URLComponent:
    """LangFlow's URL: ``page_results`` (rows), ``raw_results`` (text), or the tool."""

    def __init__(
        self, template: Mapping[str, Any], metadata: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        self.metadata = metadata
        raw = (template.get("urls") or {}).get("value")
        self.urls = [str(u) for u in raw] if isinstance(raw, list) else None
        self.wanted: set[str] = {"page_results"}

    async def _rows(self, values: Mapping[str, Any], urls: list[str]) -> list[dict[str, Any]]:
        return await fetch_pages(
            urls,
            fmt=str(values.get("format") or "Text"),
            headers=values.get("headers"),
            timeout_s=values.get("timeout"),
            continue_on_failure=values.get("continue_on_failure") is not False,
        )

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        if TOOL_OUTPUT in self.wanted:

            async def call(args: dict[str, Any]) -> str:
                try:
                    # Arguments override the node's fields; none given, the node's URLs.
                    urls = _urls(args.get("urls")) or self.urls or _urls(values.get("urls"))
                    rows = await self._rows(values, urls)
                except FetchFailed as exc:
                    raise ToolException(f"Error fetching URLs: {exc}") from exc
                return tool_text(
                    [{"url": r["url"], "title": r["title"], "text": r["text"]} for r in rows]
                )

            outputs[TOOL_OUTPUT] = make_tools(self.metadata, URL_TOOL, call)
        if self.wanted & {"page_results", "raw_results"}:
            urls = (
                self.urls
                if self.urls is not None and values.get("urls") == (self.urls[:1] or [""])[0]
                else _urls(values.get("urls"))
            )
            rows = await self._rows(values, urls)
            outputs["page_results"] = rows
            outputs["raw_results"] = Message("\n\n".join(r["text"] for r in rows))
        return outputs


# Search components: (field holding the query, data output name, default tool).
_SEARCH_KINDS: dict[str, tuple[str, str, tuple[str, str, dict[str, Any]]]] = {
    "UnifiedWebSearch": (
        "query",
        "results",
        (
            "perform_search",
            "Search the web, news, or RSS feeds.",
            {"query": {"type": "string", "description": "Search keywords for news articles."}},
        ),
    ),
    "TavilySearchComponent": (
        "query",
        "dataframe",
        (
            "fetch_content_dataframe",
            "TavilySearchComponent. fetch_content_dataframe - **Tavily Search** is a search "
            "engine optimized for LLMs and RAG.",
            {"query": {"type": "string", "description": "The search query you want to execute."}},
        ),
    ),
    "SearchComponent": (
        "input_value",
        "dataframe",
        (
            "fetch_content_dataframe",
            "Call the searchapi.io API with result limiting",
            {"input_value": {"type": "string", "description": "The search query."}},
        ),
    ),
}


class SearchToolComponent:
    """LangFlow's web search components on flowfleet's one search backend."""

    def __init__(self, kind: str, metadata: Sequence[Mapping[str, Any]] = ()) -> None:
        self.query_field, self.output, self.default_tool = _SEARCH_KINDS[kind]
        self.metadata = metadata
        self.wanted: set[str] = {self.output}

    async def _rows(self, values: Mapping[str, Any], query: str) -> list[dict[str, Any]]:
        topic = str(values.get("topic") or "general")
        max_results = values.get("max_results")
        return await web_search(
            query, max_results=int(max_results) if max_results else 5, topic=topic
        )

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        if TOOL_OUTPUT in self.wanted:

            async def call(args: dict[str, Any]) -> str:
                query = as_text(args.get(self.query_field) or values.get(self.query_field))
                try:
                    rows = await self._rows(values, query)
                except SearchFailed as exc:
                    raise ToolException(f"Error searching: {exc}") from exc
                return tool_text([{k: r[k] for k in ("title", "url", "content")} for r in rows])

            outputs[TOOL_OUTPUT] = make_tools(self.metadata, self.default_tool, call)
        if self.output in self.wanted:
            outputs[self.output] = await self._rows(values, as_text(values.get(self.query_field)))
        return outputs


API_REQUEST_TOOL = (
    "make_api_request",
    "Make HTTP requests using URL or cURL commands.",
    {"url_input": {"type": "string", "description": "Enter the URL for the request."}},
)
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})


def _pairs(table: Any) -> dict[str, Any]:
    if isinstance(table, dict):
        return dict(table)
    rows = table if isinstance(table, list) else []
    return {str(r["key"]): r.get("value") for r in rows if isinstance(r, Mapping) and r.get("key")}


class APIRequestComponent:
    """LangFlow's API Request (URL mode) through the egress policy: ``{source, status_code,
    response}`` (the body as JSON when it parses, else text). cURL mode is not run: flowfleet
    does not parse shell commands; give ``url_input``."""

    def __init__(self, metadata: Sequence[Mapping[str, Any]] = ()) -> None:
        self.metadata = metadata
        self.wanted: set[str] = {"data"}

    async def request(self, values: Mapping[str, Any], url: str) -> dict[str, Any]:
        method = str(values.get("method") or "GET").upper()
        if method not in _METHODS:
            raise ToolException(f"unsupported method {method!r}; use one of {sorted(_METHODS)}")
        if not url.strip():
            raise ToolException("no URL given: set url_input (cURL input is not supported)")
        body = _pairs(values.get("body"))
        try:
            response = await egress.fetch(
                get_settings(),
                method,
                url.strip(),
                headers={k: str(v) for k, v in _pairs(values.get("headers")).items()},
                params=_pairs(values.get("query_params")) or None,
                json=body if body and method not in ("GET", "HEAD") else None,
                timeout_s=float(values.get("timeout") or 0) or None,
                follow_redirects=values.get("follow_redirects") is not False,
            )
        except FlowfleetError as exc:
            raise ToolException(f"Error making request to {url}: {exc}") from exc
        try:
            payload: Any = response.json()
        except ValueError:
            payload = response.text()
        return {"source": response.url, "status_code": response.status_code, "response": payload}

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        if TOOL_OUTPUT in self.wanted:

            async def call(args: dict[str, Any]) -> str:
                if args.get("curl_input") and not args.get("url_input"):
                    raise ToolException("cURL input is not supported; call with url_input")
                url = as_text(args.get("url_input") or values.get("url_input"))
                return tool_text(await self.request(values, url))

            outputs[TOOL_OUTPUT] = make_tools(self.metadata, API_REQUEST_TOOL, call)
        if self.wanted - {TOOL_OUTPUT}:
            try:
                outputs["data"] = await self.request(values, as_text(values.get("url_input")))
            except ToolException as exc:
                raise ValueError(str(exc)) from exc
        return outputs
