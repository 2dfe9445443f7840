"""POST /v1/chat/completions and GET /v1/models through the official openai client."""

from __future__ import annotations

import httpx
import openai
import pytest

from flowfleet.llm_sim import reply_text
from tests.support.stack import Stack

PROMPT_SYSTEM = "You are a concise assistant. Answer in one paragraph."


@pytest.fixture
def oai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.api.url + "/v1", api_key="unused", max_retries=0)


def test_streamed_and_unstreamed_completions_carry_the_flow_output(
    oai: openai.OpenAI, sim: httpx.Client
) -> None:
    sim.put("/_sim/config", json={"token_s": 0.02, "tokens": 20})
    messages = [{"role": "user", "content": "Hello flows"}]
    expected = reply_text([{"role": "system", "content": PROMPT_SYSTEM}, *messages])
    expected += " ~" * (20 - len(expected.split()))

    whole = oai.chat.completions.create(model="prompt", messages=messages)  # type: ignore[arg-type]
    chunks = list(
        oai.chat.completions.create(
            model="prompt",
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert whole.object == "chat.completion"
    assert whole.choices[0].message.content == expected
    assert whole.usage is not None
    assert whole.usage.completion_tokens == 20
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == expected
    # Streamed as generated: a chunk per token event, and an event carries one token unless
    # several arrived while the previous one was on its way to Redis (worker/streaming.py).
    assert 1 < sum(1 for c in chunks if c.choices and c.choices[0].delta.content) <= 20
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 20


def test_user_field_is_the_session(oai: openai.OpenAI, client: httpx.Client) -> None:
    oai.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "I am Bo"}], user="s-oai"
    )

    history = client.get("/v1/sessions/s-oai/messages").json()["messages"]
    assert [m["content"] for m in history][0] == "I am Bo"


def test_failed_run_is_an_openai_error(oai: openai.OpenAI, sim: httpx.Client) -> None:
    sim.put("/_sim/config", json={"error_rate": 1.0, "error_status": [500]})

    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="prompt", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert "500" in info.value.message

    with pytest.raises(openai.APIError):
        list(
            oai.chat.completions.create(
                model="prompt", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )


def test_unknown_model_is_404_and_models_lists_flows(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="no-flow", messages=[{"role": "user", "content": "x"}])

    assert {"prompt", "chat"} <= {m.id for m in oai.models.list()}
