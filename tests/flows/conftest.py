"""A real llm-sim over HTTP for the LangFlow execution tests, with backends pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shared.settings import get_settings


@pytest.fixture(scope="session")
def sim_url(llm_sim: str) -> str:
    """Base URL (with /v1) of the session's llm-sim process."""
    return f"{llm_sim}/v1"


@pytest.fixture
def sim(sim_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Models route to the sim; its request log starts empty."""
    monkeypatch.setenv("FLOWFLEET_BACKENDS", f'[{{"name":"sim","base_url":"{sim_url}"}}]')
    monkeypatch.setenv("FLOWFLEET_ALLOW_ADHOC_BACKENDS", "true")
    # Providers no backend names (anthropic, google, groq...) go to the embedded llm-sim.
    monkeypatch.setenv("FLOWFLEET_LLM_SIM_URL", sim_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    get_settings.cache_clear()
    httpx.delete(sim_url.removesuffix("/v1") + "/_sim/requests")
    yield sim_url
    get_settings.cache_clear()


def sim_requests(sim_url: str) -> list[dict]:
    """The chat request bodies the sim received, oldest first."""
    return httpx.get(sim_url.removesuffix("/v1") + "/_sim/requests").json()


def set_sim_latency(sim_url: str, ttft_s: float) -> None:
    httpx.put(sim_url.removesuffix("/v1") + "/_sim/config", json={"ttft_s": ttft_s})
