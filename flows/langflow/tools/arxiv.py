"""arXiv search for LangFlow's ArXivComponent: the Atom query API through the egress policy.

Facts from LangFlow's lfx ``ArXivComponent``: the query is ``search_query`` prefixed by the
field (``ti:``, ``abs:``, ``au:``, ``cat:``; none for ``all``), ``max_results`` is sent as is;
each Atom entry becomes a row ``{id, title, summary, published, updated, authors, arxiv_url,
pdf_url, comment, journal_ref, primary_category, categories}``; a failed request is the one
row ``{"error": "Request error: ..."}``. flowfleet sends the query to
``FLOWFLEET_ARXIV_URL`` (export.arxiv.org's API by default) through the egress policy and
caps ``max_results`` at ``MAX_RESULTS``.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError, fromstring

from shared import egress
from shared.errors import FlowfleetError
from shared.settings import get_settings

MAX_RESULTS = 50
TIMEOUT_S = 10.0  # LangFlow's ARXIV_REQUEST_TIMEOUT_SECONDS
_PREFIX = {"title": "ti", "abstract": "abs", "author": "au", "cat": "cat"}
_NS = {"atom": "http://www.w3.org/2005/Atom", "arxiv": "http://arxiv.org/schemas/atom"}


def arxiv_query(query: str, search_type: str = "all") -> str:
    """The API's ``search_query``: the text, prefixed by the field searched."""
    prefix = _PREFIX.get(search_type)
    return f"{prefix}:{query}" if prefix else query


def _text(element: Element, path: str) -> str | None:
    found = element.find(path, _NS)
    return found.text.strip() if found is not None and found.text else None


def _link(element: Element, rel: str) -> str | None:
    links = element.findall("atom:link", _NS)
    return next((x.get("href") for x in links if x.get("rel") == rel), None)


def parse_atom(content: bytes) -> list[dict[str, Any]]:
    """The papers of an Atom feed, as LangFlow's rows; raises ValueError."""
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        raise ValueError("the feed declares a DTD or entities, which arXiv's never does")
    try:
        root = fromstring(content)
    except ParseError as exc:
        raise ValueError(f"the answer is not Atom XML: {exc}") from exc
    papers = []
    for entry in root.findall("atom:entry", _NS):
        primary = entry.find("arxiv:primary_category", _NS)
        papers.append(
            {
                "id": _text(entry, "atom:id"),
                "title": _text(entry, "atom:title"),
                "summary": _text(entry, "atom:summary"),
                "published": _text(entry, "atom:published"),
                "updated": _text(entry, "atom:updated"),
                "authors": [_text(a, "atom:name") for a in entry.findall("atom:author", _NS)],
                "arxiv_url": _link(entry, "alternate"),
                "pdf_url": _link(entry, "related"),
                "comment": _text(entry, "arxiv:comment"),
                "journal_ref": _text(entry, "arxiv:journal_ref"),
                "primary_category": primary.get("term") if primary is not None else None,
                "categories": [c.get("term") for c in entry.findall("atom:category", _NS)],
            }
        )
    return papers


async def search_arxiv(
    query: str, *, search_type: str = "all", max_results: int = 10
) -> list[dict[str, Any]]:
    """Papers matching the query, or LangFlow's one error row."""
    settings = get_settings()
    params = {
        "search_query": arxiv_query(query, search_type),
        "max_results": str(max(1, min(max_results, MAX_RESULTS))),
    }
    try:
        response = await egress.fetch(
            settings, "GET", settings.arxiv_url, params=params, timeout_s=TIMEOUT_S
        )
        if response.status_code >= 400:
            raise ValueError(f"arXiv answered HTTP {response.status_code}")
        return parse_atom(response.content)
    except (FlowfleetError, ValueError) as exc:
        return [{"error": f"Request error: {exc}"}]
