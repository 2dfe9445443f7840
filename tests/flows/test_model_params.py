"""A compiled model reports the same invocation params as LangChain's own code would."""

from __future__ import annotations

from typing import Any

from langchain_openai import ChatOpenAI

from flows.models import chat_model
from flows.routing import ModelSpec


def _langchain(model: Any, **kwargs: Any) -> dict[str, Any]:
    return ChatOpenAI._get_invocation_params(model, **kwargs)  # type: ignore[no-any-return]


def test_cached_params_match_langchains_per_call_and_per_instance(sim: str) -> None:
    model = chat_model(ModelSpec(model_name="gpt-4o-mini", temperature=0.3))
    for _ in range(2):  # the second call is served from the cache
        assert model._get_invocation_params(stop=["x"], stream=True) == _langchain(
            model, stop=["x"], stream=True
        )
    copy = model.model_copy(update={"temperature": 0.9})
    assert copy._get_invocation_params()["temperature"] == 0.9
    assert model._get_invocation_params()["temperature"] == 0.3


def test_calls_with_tools_keep_langchains_redaction(sim: str) -> None:
    model = chat_model(ModelSpec(model_name="gpt-4o-mini"))
    tools = [{"type": "mcp", "server_label": "x", "headers": {"Authorization": "secret"}}]
    params = model._get_invocation_params(tools=tools)
    assert params == _langchain(model, tools=tools)
    assert "secret" not in str(params)
