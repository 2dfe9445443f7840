"""LangFlow 1.13's Memory Base on flowfleet's session history.

Facts from LangFlow's lfx ``MemoryBaseComponent`` (files_and_knowledge/memory_retrieval):
one output ``retrieve_data`` (method ``retrieve_memory``), a DataFrame of the Memory Base's
chunks most similar to ``search_query`` (at most ``top_k``), each row ``{content, _score}``
plus the chunk's metadata (sender, session...) when ``include_metadata``; an empty query
returns no rows. ``filter_by_session`` scopes the search to the run's session. In the
starters it is an Agent's tool (``component_as_tool``: ``retrieve_memory(search_query)``).

LangFlow's Memory Base is a vector store its server fills with the flow's conversations.
flowfleet's is the session history it already keeps in PostgreSQL, owner-scoped: the run's
earlier turns that share words with the query, ranked by the share of the query's words
they hold (no embeddings; ties: the newest first). ``memory_base`` (the store's name) is
not used: there is one history. ``filter_by_session`` off does not widen the search to
other sessions: a flow reads only the run's own conversation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from flows.langflow.components import RunContext, as_text
from flows.langflow.specs import TOOL_OUTPUT
from flows.langflow.tool_components import make_tools, tool_text

RETRIEVE_TOOL = (
    "retrieve_memory",
    "Returns matching memory chunks. Scoped to the current session by default; turn "
    "'Filter by Session' off to retrieve across sessions.",
    {
        "search_query": {
            "type": "string",
            "description": "Query used for semantic retrieval against the memory base.",
        }
    },
)
MAX_TOP_K = 100
_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def search_history(
    ctx: RunContext, query: str, *, top_k: int = 5, include_metadata: bool = True
) -> list[dict[str, Any]]:
    """The session's turns most like ``query``: rows ``{content, _score, sender, ...}``."""
    wanted = _words(query)
    if not wanted:
        return []
    scored = []
    for index, turn in enumerate(ctx.history):
        score = len(wanted & _words(turn.text)) / len(wanted)
        if score > 0:  # a turn sharing no word with the query is not a match
            scored.append((score, index, turn))
    # Most words in common first; among equals the newest turn (as recall usually wants).
    scored.sort(key=lambda s: (-s[0], -s[1]))
    rows = []
    for score, index, turn in scored[: max(0, min(top_k, MAX_TOP_K))]:
        row: dict[str, Any] = {"content": turn.text, "_score": round(score, 4)}
        if include_metadata:
            user = turn.role == "user"
            row.update(
                sender="User" if user else "Machine",
                sender_name=ctx.user_name if user else ctx.ai_name,
                turn=index,
            )
        rows.append(row)
    return rows


class MemoryBaseComponent:
    """LangFlow's Memory Base: ``retrieve_data`` rows, or the ``retrieve_memory`` tool."""

    def __init__(self, metadata: Sequence[Mapping[str, Any]] = ()) -> None:
        self.metadata = metadata
        # Set by the compiler from the node's connected outputs.
        self.wanted: set[str] = {"retrieve_data"}

    def _rows(self, values: Mapping[str, Any], query: str, ctx: RunContext) -> list[dict[str, Any]]:
        top_k = values.get("top_k")
        return search_history(
            ctx,
            query,
            top_k=int(top_k) if top_k is not None else 5,
            include_metadata=values.get("include_metadata") is not False,
        )

    async def run(self, values: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        if TOOL_OUTPUT in self.wanted:

            async def call(args: dict[str, Any]) -> str:
                query = as_text(args.get("search_query") or values.get("search_query"))
                return tool_text(self._rows(values, query, ctx))

            outputs[TOOL_OUTPUT] = make_tools(self.metadata, RETRIEVE_TOOL, call)
        if "retrieve_data" in self.wanted:
            outputs["retrieve_data"] = self._rows(values, as_text(values.get("search_query")), ctx)
        return outputs
