"""LangFlow's arXiv component: ``dataframe`` (papers as rows), or the ``search_papers`` tool.

The search itself (query, Atom parsing, the egress policy) is ``tools/arxiv.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flows.langflow.components import RunContext, as_text
from flows.langflow.specs import TOOL_OUTPUT
from flows.langflow.tool_components import make_tools, tool_text
from flows.langflow.tools.arxiv import search_arxiv

ARXIV_TOOL = (
    "search_papers_dataframe",
    "arXiv. search_papers_dataframe() - Search and retrieve papers from arXiv.org.",
    {
        "search_query": {
            "type": "string",
            "description": "The search query for arXiv papers (e.g., 'quantum computing')",
        }
    },
)


class ArXivComponent:
    """LangFlow's arXiv search through the egress policy."""

    def __init__(self, metadata: Sequence[Mapping[str, Any]] = ()) -> None:
        self.metadata = metadata
        # Set by the compiler from the node's connected outputs.
        self.wanted: set[str] = {"dataframe"}

    async def _rows(self, values: Mapping[str, Any], query: str) -> list[dict[str, Any]]:
        max_results = values.get("max_results")
        return await search_arxiv(
            query,
            search_type=str(values.get("search_type") or "all"),
            max_results=int(max_results) if max_results else 10,
        )

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        if TOOL_OUTPUT in self.wanted:

            async def call(args: dict[str, Any]) -> str:
                query = as_text(args.get("search_query") or values.get("search_query"))
                return tool_text(await self._rows(values, query))

            outputs[TOOL_OUTPUT] = make_tools(self.metadata, ARXIV_TOOL, call)
        if "dataframe" in self.wanted:
            outputs["dataframe"] = await self._rows(values, as_text(values.get("search_query")))
        return outputs
