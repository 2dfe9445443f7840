"""LangFlow's URL component: fetch pages through the egress policy, HTML to text or Markdown.

Facts from LangFlow's ``URLComponent``: each page becomes a row ``{text, url, title,
description, content_type, language}``; ``format`` "Text" keeps the page's text
(BeautifulSoup's ``get_text``), "Markdown" converts it to Markdown, "HTML" keeps the
markup; ``headers`` is a table of ``{key, value}``; with ``continue_on_failure`` (the
default) a page that fails is left out. flowfleet fetches the named pages only
(``max_depth`` 1: it does not crawl the links it finds) and every fetch goes through
``shared.egress`` (public addresses only unless allow-listed, redirects re-checked, size
and time capped).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from bs4 import BeautifulSoup
from markdownify import markdownify

from shared import egress
from shared.errors import FlowfleetError
from shared.settings import get_settings

MAX_URLS = 10  # pages one call may fetch


class FetchFailed(Exception):
    """No page could be fetched; the message says why for each."""


def page_row(url: str, body: str, content_type: str, fmt: str) -> dict[str, Any]:
    """One page as LangFlow's URL component returns it."""
    is_html = "html" in content_type or body.lstrip()[:15].lower().startswith(
        ("<!doctype", "<html")
    )
    soup = BeautifulSoup(body, "html.parser") if is_html else None
    if soup is None or fmt == "HTML":
        text = body
    elif fmt == "Markdown":
        text = markdownify(body, heading_style="ATX").strip()
    else:
        text = soup.get_text()
    title = soup.title.get_text(strip=True) if soup is not None and soup.title else ""
    description = ""
    language = ""
    if soup is not None:
        meta = soup.find("meta", attrs={"name": "description"})
        description = str(meta.get("content") or "") if meta else ""
        html = soup.find("html")
        language = str(html.get("lang") or "") if html else ""
    return {
        "text": text,
        "url": url,
        "title": title,
        "description": description,
        "content_type": content_type,
        "language": language,
    }


def _headers(table: Any) -> dict[str, str]:
    rows = table if isinstance(table, list) else []
    return {
        str(r["key"]): str(r.get("value") or "")
        for r in rows
        if isinstance(r, Mapping) and r.get("key")
    }


async def fetch_pages(
    urls: Sequence[str],
    *,
    fmt: str = "Text",
    headers: Any = None,
    timeout_s: float | None = None,
    continue_on_failure: bool = True,
) -> list[dict[str, Any]]:
    """Each URL fetched under the egress policy and converted; raises FetchFailed."""
    wanted = [u.strip() for u in urls if isinstance(u, str) and u.strip()][:MAX_URLS]
    if not wanted:
        raise FetchFailed("no URL given")
    settings = get_settings()
    sent = _headers(headers)

    async def one(url: str) -> dict[str, Any]:
        target = url if "://" in url else f"https://{url}"
        response = await egress.fetch(
            settings, "GET", target, headers=sent, timeout_s=float(timeout_s or 0) or None
        )
        content_type = response.headers.get("content-type", "")
        return page_row(response.url, response.text(), content_type, fmt)

    results = await asyncio.gather(*(one(u) for u in wanted), return_exceptions=True)
    rows, errors = [], []
    for url, result in zip(wanted, results, strict=True):
        if isinstance(result, FlowfleetError):
            errors.append(f"{url}: {result}")
        elif isinstance(result, BaseException):
            raise result
        else:
            rows.append(result)
    if errors and (not continue_on_failure or not rows):
        raise FetchFailed("; ".join(errors))
    return rows
