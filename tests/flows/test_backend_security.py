"""Keys reach only their backend; client-chosen timeouts never trip the shared breaker;
model names and connection fields stay the operator's (issue 20, items 1 and 7)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from langchain_core.messages import HumanMessage

from flows.base import FlowInput
from flows.langflow.compiler import compile_langflow
from flows.langflow.document import parse_document
from flows.langflow.validation import validate_tweaks
from flows.models import chat_model, set_limiter
from flows.retry import breaker_for
from flows.routing import ModelSpec
from shared.errors import BackendError
from shared.settings import get_settings
from tests.flows.conftest import set_sim_latency
from tests.flows.langflow_fixtures import load, node_of

SECRET = "webhook-secret-never-sent"
SIM_KEY = "sim-backend-key"
NODE = "OpenAIModel-OcXkl"


def _calls(sim_url: str) -> list[dict]:
    return httpx.get(sim_url.removesuffix("/v1") + "/_sim/calls").json()


@pytest.fixture
def keyed_sim(sim: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The sim as the one configured backend, with its own key; a secret elsewhere in env."""
    monkeypatch.setenv(
        "FLOWFLEET_BACKENDS",
        json.dumps([{"name": "keyed-sim", "base_url": sim, "api_key_env": "SIM_KEY"}]),
    )
    monkeypatch.setenv("SIM_KEY", SIM_KEY)
    monkeypatch.setenv("FLOWFLEET_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    yield sim
    get_settings.cache_clear()


def _stealing_flow() -> dict:
    flow = load("Basic Prompting (OpenAIModel).json")
    node = node_of(flow, "OpenAIModel")
    node["data"]["node"]["template"]["api_key"].update(
        value="FLOWFLEET_WEBHOOK_SECRET", load_from_db=True
    )
    return flow


async def test_the_key_sent_is_always_the_routed_backends_own(keyed_sim: str) -> None:
    """A flow naming FLOWFLEET_WEBHOOK_SECRET as its key sends the backend's key instead."""
    await compile_langflow(_stealing_flow()).ainvoke(FlowInput("hi"), {})
    (call,) = _calls(keyed_sim)
    assert call["headers"]["authorization"] == f"Bearer {SIM_KEY}"
    assert SECRET not in json.dumps(call)


async def test_an_adhoc_base_url_never_gets_a_configured_key(
    keyed_sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even with ad-hoc backends and the base URL tweak opened by the operator, a tweak that
    points the node at a listener (here llm-sim under another host name) sends no key:
    neither the secret the flow names nor the configured backend's."""
    monkeypatch.setenv("FLOWFLEET_TWEAKABLE_MODEL_FIELDS", '["openai_api_base"]')
    get_settings.cache_clear()
    listener = keyed_sim.replace("127.0.0.1", "localhost")
    assert listener != keyed_sim
    flow = compile_langflow(_stealing_flow())
    tweaks = {NODE: {"openai_api_base": listener}}
    assert validate_tweaks(flow.doc, tweaks) == []
    await flow.ainvoke(FlowInput("hi", tweaks=tweaks), {})
    (call,) = _calls(keyed_sim)
    assert call["headers"]["host"].startswith("localhost")  # it went to the listener
    assert call["headers"]["authorization"] == "Bearer not-set"
    assert SECRET not in json.dumps(call)
    assert SIM_KEY not in json.dumps(call)


def test_connection_tweaks_need_the_operators_opt_in(
    sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = parse_document(json.dumps(load("Basic Prompting (OpenAIModel).json")))
    for field, value in (("openai_api_base", "http://x/v1"), ("timeout", 1), ("model_name", "m")):
        (problem,) = validate_tweaks(doc, {NODE: {field: value}})
        assert (problem.node_id, problem.field) == (NODE, field)
        assert "FLOWFLEET_TWEAKABLE_MODEL_FIELDS" in problem.message
    assert validate_tweaks(doc, {NODE: {"temperature": 0.5}}) == []
    monkeypatch.setenv("FLOWFLEET_TWEAKABLE_MODEL_FIELDS", '["timeout", "api_key"]')
    get_settings.cache_clear()
    assert validate_tweaks(doc, {NODE: {"timeout": 1}}) == []
    (problem,) = validate_tweaks(doc, {NODE: {"api_key": "sk-x"}})  # secrets: never
    assert problem.field == "api_key"


def test_a_tweaked_model_name_must_be_one_the_backend_serves(
    sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opened by the operator, model_name still only takes the backend's models: a client
    cannot mint a new metrics series per request."""
    monkeypatch.setenv(
        "FLOWFLEET_BACKENDS",
        json.dumps([{"name": "sim", "base_url": sim, "models": ["gpt-4.1-*"]}]),
    )
    monkeypatch.setenv("FLOWFLEET_TWEAKABLE_MODEL_FIELDS", '["model_name"]')
    get_settings.cache_clear()
    doc = parse_document(json.dumps(load("Basic Prompting (OpenAIModel).json")))
    assert validate_tweaks(doc, {NODE: {"model_name": "gpt-4.1-nano"}}) == []
    (problem,) = validate_tweaks(doc, {NODE: {"model_name": "random-1234"}})
    assert problem.field == "model_name"
    assert "'random-1234' is not one backend 'sim' serves" in problem.message


async def test_a_client_timeout_never_trips_the_shared_breaker(
    sim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls failing on a timeout the flow chose (shorter than the backend's) leave the
    breaker closed; the same failures on the backend's own timeout open it."""
    monkeypatch.setenv("FLOWFLEET_BREAKER_FAILURES", "2")
    monkeypatch.setenv("FLOWFLEET_BACKEND_RETRIES", "0")
    monkeypatch.setenv(
        "FLOWFLEET_BACKENDS",
        json.dumps(
            [
                {"name": "patient", "base_url": sim, "models": ["patient"]},
                {"name": "hasty", "base_url": sim, "models": ["hasty"], "timeout_s": 0.3},
            ]
        ),
    )
    get_settings.cache_clear()
    set_sim_latency(sim, 1.5)
    try:
        client_chosen = chat_model(ModelSpec(model_name="patient", timeout_s=0.3))
        for _ in range(4):
            with pytest.raises(BackendError, match="did not answer in time"):
                await client_chosen.ainvoke([HumanMessage("x")])
        assert breaker_for("patient").state == "closed"

        backend_own = chat_model(ModelSpec(model_name="hasty"))
        for _ in range(2):
            with pytest.raises(BackendError, match="did not answer in time"):
                await backend_own.ainvoke([HumanMessage("x")])
        assert breaker_for("hasty").state == "open"
    finally:
        set_sim_latency(sim, 0)


def test_a_flow_timeout_never_lengthens_the_backends(sim: str) -> None:
    model = chat_model(ModelSpec(model_name="m", timeout_s=10_000))
    assert model.request_timeout == get_settings().backends[0].timeout_s  # type: ignore[attr-defined]
    assert model.metadata == {
        "flowfleet_backend": "sim",
        "flowfleet_max_concurrency": None,
        "flowfleet_client_timeout": False,
    }


@pytest.mark.parametrize("provider", ["anthropic", "google"])
async def test_anthropic_and_gemini_calls_retry_and_give_up_like_openai(
    sim: str, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    """The same retry policy and error mapping on every API: a 503 is retried
    FLOWFLEET_BACKEND_RETRIES times, then the run's error names the status and attempts."""
    monkeypatch.setenv("FLOWFLEET_LLM_SIM_URL", sim)
    monkeypatch.setenv("FLOWFLEET_BACKEND_RETRIES", "2")
    monkeypatch.setenv("FLOWFLEET_BACKEND_BACKOFF_BASE_S", "0.01")
    get_settings.cache_clear()
    root = sim.removesuffix("/v1")
    httpx.put(f"{root}/_sim/config", json={"error_rate": 1, "error_status": [503]})
    try:
        model = chat_model(ModelSpec(model_name="m", provider=provider, streaming=False))
        with pytest.raises(BackendError, match="answered HTTP 503 after 3 attempts"):
            await model.ainvoke([HumanMessage("x")])
    finally:
        httpx.put(f"{root}/_sim/config", json={"error_rate": 0})
    calls = _calls(sim)
    assert len(calls) == 3
    assert {c["api"] for c in calls} == {"gemini" if provider == "google" else "anthropic"}


class _CountingLimiter:
    """The process limiter's interface (``flows.models.Limiter``), counting places taken."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, int]] = []

    @contextlib.asynccontextmanager
    async def slot(self, backend: str, limit: int) -> AsyncIterator[None]:
        self.taken.append((backend, limit))
        yield


@pytest.mark.parametrize("api", ["anthropic", "google"])
async def test_anthropic_and_gemini_calls_hold_a_fleet_wide_place(
    sim: str, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    """A backend's max_concurrency applies to every API: each call holds one place."""
    root = sim.removesuffix("/v1")
    monkeypatch.setenv(
        "FLOWFLEET_BACKENDS",
        json.dumps(
            [
                {"name": "sim", "base_url": sim},
                {
                    "name": f"limited-{api}",
                    "base_url": root,
                    "api": api,
                    "providers": [api],
                    "max_concurrency": 3,
                },
            ]
        ),
    )
    get_settings.cache_clear()
    limiter = _CountingLimiter()
    set_limiter(limiter)
    try:
        for streaming in (False, True):
            model = chat_model(ModelSpec(model_name="m", provider=api, streaming=streaming))
            await model.ainvoke([HumanMessage("x")])
    finally:
        set_limiter(None)
    assert limiter.taken == [(f"limited-{api}", 3)] * 2
    assert len(_calls(sim)) == 2
