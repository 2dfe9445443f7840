"""One web search backend behind LangFlow's search components (UnifiedWebSearch, Tavily,
SearchAPI): a Tavily-style endpoint from settings, its key from the environment.

``FLOWFLEET_SEARCH_URL`` names the endpoint (``https://api.tavily.com/search`` speaks it);
``FLOWFLEET_SEARCH_API_KEY`` is sent as a bearer token. Unset, the search goes to llm-sim's
``/search`` (the embedded default and the tests), beside the simulated model. The endpoint is
the operator's, like a model backend, so it is called directly; a flow chooses only the
query, never where it goes.
"""

from __future__ import annotations

from typing import Any

import httpx

from shared.settings import Settings, get_settings

MAX_RESULTS = 20
TIMEOUT_S = 30.0


class SearchFailed(Exception):
    """The search backend did not answer with results."""


def search_endpoint(settings: Settings) -> str:
    """The configured search URL, else llm-sim's ``/search``."""
    if settings.search_url:
        return settings.search_url
    return settings.llm_sim_url.rstrip("/").removesuffix("/v1") + "/search"


async def web_search(
    query: str, *, max_results: int = 5, topic: str = "general"
) -> list[dict[str, Any]]:
    """Rows ``{title, url, link, snippet, content}`` for the query; raises SearchFailed."""
    if not query.strip():
        raise SearchFailed("the search query is empty")
    settings = get_settings()
    headers = {}
    if settings.search_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.search_api_key.get_secret_value()}"
    count = max(1, min(max_results, MAX_RESULTS))
    body = {"query": query, "max_results": count, "topic": topic}
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S, trust_env=False) as client:
            response = await client.post(search_endpoint(settings), json=body, headers=headers)
            response.raise_for_status()
            results = response.json().get("results")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise SearchFailed(f"the search backend failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(results, list):
        raise SearchFailed("the search backend answered without results")
    rows = []
    for item in results[:count]:
        if isinstance(item, dict):
            url = str(item.get("url") or "")
            content = str(item.get("content") or "")
            rows.append(
                {
                    "title": str(item.get("title") or ""),
                    "url": url,
                    "link": url,
                    "snippet": content[:200],
                    "content": content,
                }
            )
    return rows
