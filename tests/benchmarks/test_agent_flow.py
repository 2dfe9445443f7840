"""The benchmark's agent flow does what its figures claim: one run is three model calls and
two tool calls, as a real llm-sim recorded them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from benchmarks.designs import AGENT
from benchmarks.harness import agent_calls
from flows.base import FlowInput
from flows.langflow.compiler import compile_langflow
from shared.settings import get_settings


@pytest.fixture
def sim(llm_sim: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Models route to the session's llm-sim; its request log starts empty."""
    backends = [{"name": "sim", "base_url": f"{llm_sim}/v1"}]
    monkeypatch.setenv("FLOWFLEET_BACKENDS", json.dumps(backends))
    get_settings.cache_clear()
    httpx.delete(f"{llm_sim}/_sim/requests").raise_for_status()
    yield llm_sim
    get_settings.cache_clear()


def _tool_calls(body: dict) -> list[tuple[str, dict]]:
    """The (name, arguments) of every tool call the model made before this request."""
    return [
        (call["function"]["name"], json.loads(call["function"]["arguments"]))
        for m in body["messages"]
        for call in m.get("tool_calls") or []
    ]


async def test_one_agent_run_is_three_model_calls_and_two_tool_calls(sim: str) -> None:
    flow = compile_langflow(AGENT.file.read_text())
    result = await flow.ainvoke(FlowInput(AGENT.text(7)), {})

    requests = httpx.get(f"{sim}/_sim/requests").json()
    assert len(requests) == 3  # model calls
    assert all(r["model"] == "gpt-4o-mini" for r in requests)
    offered = [t["function"]["name"] for t in requests[0]["tools"]]
    assert offered == ["evaluate_expression", "get_current_date"]
    final = requests[-1]
    assert _tool_calls(final) == [
        ("evaluate_expression", {"expression": "7*3+7"}),
        ("get_current_date", {"timezone": "UTC"}),
    ]
    results = [m["content"] for m in final["messages"] if m["role"] == "tool"]
    assert json.loads(results[0]) == {"result": "28"}
    assert results[1].startswith("Current date and time in UTC:")
    assert result.text is not None
    assert result.text.startswith('Tool results: evaluate_expression: {"result": "28"}; ')
    # The harness reads the same counts (and the model's time) from the sim's log.
    calls = agent_calls(sim, {"ttft_s": 0.2, "token_s": 0.02})
    assert (calls["model_calls"], calls["tool_calls"]) == (3, 2)
    words = len(result.text.split())
    assert calls["llm_s"] == pytest.approx(2 * 0.18 + 0.2 + 0.02 * (words - 1), abs=1e-3)
