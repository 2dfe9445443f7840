"""The response cache is per owner: one key's cached answer never serves (or betrays) another's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.test_auth import as_key, finish, make_key
from tests.support.faults import isolated_stack
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def caching(infra: dict[str, str], llm_sim: str) -> Iterator[Stack]:
    with isolated_stack(
        llm_sim,
        infra["redis_url"],
        FLOWFLEET_AUTH_ENABLED="true",
        FLOWFLEET_CACHE_FLOWS='{"prompt": 300}',
    ) as stack:
        yield stack


def _ask(client: httpx.Client, text: str) -> dict:
    response = client.post("/v1/flows/prompt/runs", json={"input": text})
    assert response.status_code == 202, response.text
    return finish(client, response.json()["id"])


def test_a_cached_answer_serves_only_the_key_that_asked(caching: Stack, sim: httpx.Client) -> None:
    scopes = "runs:write,runs:read"
    with (
        as_key(caching, make_key(caching, scopes, "a")) as a,
        as_key(caching, make_key(caching, scopes, "b")) as b,
    ):
        first = _ask(a, "what did the other tenant ask?")
        again = _ask(a, "what did the other tenant ask?")
        sim.delete("/_sim/requests")
        other = _ask(b, "what did the other tenant ask?")

        assert first["status"] == again["status"] == other["status"] == "succeeded"
        assert not first["cached"]
        assert again["cached"]  # the cache works for the key that asked
        assert not other["cached"]  # and another key's same question goes to the backend
        assert len(sim.get("/_sim/requests").json()) == 1
