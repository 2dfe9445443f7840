"""llm-sim speaks OpenAI well enough for the real clients, deterministically, with faults."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from flowfleet.llm_sim import (
    PAD_TOKEN,
    SimConfig,
    expected_digest,
    reply_text,
    reply_tokens,
    sample_value,
)
from tests.support.llm_sim import start_llm_sim, stop_llm_sim

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is  the capital of France?"},
]


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    base_url, process = start_llm_sim()
    try:
        yield base_url
    finally:
        stop_llm_sim(process)


@pytest.fixture(autouse=True)
def _reset_sim(request: pytest.FixtureRequest) -> None:
    # Tests share one sim process; each starts from the default config and an empty record.
    if "sim_url" not in request.fixturenames:
        return
    base_url = request.getfixturevalue("sim_url")
    httpx.put(f"{base_url}/_sim/config", json=dataclasses.asdict(SimConfig())).raise_for_status()
    httpx.delete(f"{base_url}/_sim/requests").raise_for_status()


def _complete(base_url: str, **body: object) -> httpx.Response:
    url = f"{base_url}/v1/chat/completions"
    return httpx.post(url, json={"model": "sim-1", **body}, timeout=10)


def _stream_events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def test_reply_helpers_follow_the_documented_formula() -> None:
    """The reply quotes the last user message and digests every message, list content included."""
    messages = [
        {"role": "system", "content": None},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]
    assert expected_digest(messages) == "system:e3b0c442 user:fb8e20fc"
    assert reply_text(messages) == "You said: ab [system:e3b0c442 user:fb8e20fc]"
    assert reply_text([{"role": "assistant", "content": "x"}]).startswith("You said:  [")
    assert "".join(reply_tokens(MESSAGES)) == reply_text(MESSAGES)


def test_non_streaming_reply_and_usage(sim_url: str) -> None:
    """A plain completion answers reply_text(messages) with consistent usage."""
    response = _complete(sim_url, messages=MESSAGES)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == reply_text(MESSAGES)
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == 3 + 7  # len//4 of each message
    assert usage["completion_tokens"] == len(reply_tokens(MESSAGES))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_openai_client_streams_the_reply_and_usage(sim_url: str) -> None:
    """The official client's stream concatenates to the reply and ends with a usage chunk."""
    client = openai.OpenAI(base_url=f"{sim_url}/v1", api_key="x", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply_text(MESSAGES)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(reply_tokens(MESSAGES))


async def test_langchain_streaming_ainvoke_returns_the_reply(sim_url: str) -> None:
    """langchain-openai, streaming with stream_usage, gets the reply and token usage."""
    llm = ChatOpenAI(
        base_url=f"{sim_url}/v1",
        api_key="x",  # type: ignore[arg-type]
        model="gpt-4.1-mini",
        streaming=True,
        stream_usage=True,
        max_retries=0,
    )
    message = await llm.ainvoke([("system", "You are terse."), ("user", MESSAGES[1]["content"])])
    assert message.content == reply_text(MESSAGES)
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == len(reply_tokens(MESSAGES))


async def test_langchain_non_streaming_ainvoke_returns_the_reply(sim_url: str) -> None:
    """langchain-openai without streaming gets the same reply."""
    llm = ChatOpenAI(base_url=f"{sim_url}/v1", api_key="x", model="sim-1", max_retries=0)  # type: ignore[arg-type]
    message = await llm.ainvoke("hello")
    assert message.content == reply_text([{"role": "user", "content": "hello"}])


class _Answer(BaseModel):
    text: str
    count: int
    ok: bool
    tags: list[str]


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
@pytest.mark.parametrize("streaming", [False, True])
async def test_structured_requests_get_json_fitting_the_schema(
    sim_url: str, method: str, streaming: bool
) -> None:
    """Tools get a tool call, json_schema gets JSON content; strings are the user text."""
    llm = ChatOpenAI(
        base_url=f"{sim_url}/v1",
        api_key="x",  # type: ignore[arg-type]
        model="sim-1",
        streaming=streaming,
        max_retries=0,
    )
    structured = llm.with_structured_output(_Answer, method=method)  # type: ignore[arg-type]
    answer = await structured.ainvoke([("user", "hi there")])
    assert answer == _Answer(text="hi there", count=0, ok=False, tags=[])
    (request,) = httpx.get(f"{sim_url}/_sim/requests").json()
    if method == "function_calling":
        assert request["tools"][0]["function"]["name"] == "_Answer"
    else:
        assert request["response_format"]["type"] == "json_schema"


def test_sample_value_follows_refs_min_items_and_options() -> None:
    """$ref, anyOf with null, enum and minItems shape the deterministic value."""
    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "number"}]},
            "kind": {"enum": ["a", "b"]},
        },
        "$defs": {"Item": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    assert sample_value(schema, "t") == {
        "items": [{"name": "t"}, {"name": "t"}],
        "maybe": 0,
        "kind": "a",
    }


def test_reply_is_padded_to_configured_tokens(sim_url: str) -> None:
    """With tokens=N the reply grows to N tokens by appending " ~" tokens."""
    httpx.put(f"{sim_url}/_sim/config", json={"tokens": 40}).raise_for_status()
    response = _complete(sim_url, messages=MESSAGES, stream=True)
    deltas = [json.loads(e)["choices"][0]["delta"] for e in _stream_events(response)[:-1]]
    contents = [d["content"] for d in deltas if d.get("content")]
    assert len(contents) == 40
    natural = reply_tokens(MESSAGES)
    assert contents[: len(natural)] == natural
    assert set(contents[len(natural) :]) == {PAD_TOKEN}
    assert _complete(sim_url, messages=MESSAGES).json()["usage"]["completion_tokens"] == 40


def test_ttft_and_token_time_are_respected() -> None:
    """Started with --ttft/--token-time, the first token and the whole stream take that long."""
    base_url, process = start_llm_sim(ttft_s=0.2, token_s=0.05, tokens=10)
    try:
        start = time.monotonic()
        first_token_at = None
        with httpx.stream(
            "POST",
            f"{base_url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "stream": True},
        ) as response:
            for event in _stream_events(response):
                if first_token_at is None and '"content": "' in event and '""' not in event:
                    first_token_at = time.monotonic() - start
        total = time.monotonic() - start
    finally:
        stop_llm_sim(process)
    assert first_token_at is not None
    assert 0.18 <= first_token_at < 1.0
    assert 0.6 <= total < 2.5  # 0.2 s + 9 gaps of 0.05 s


def test_injected_429_carries_retry_after() -> None:
    """error_rate=1 with status 429 fails every request the way OpenAI rate-limits."""
    base_url, process = start_llm_sim(error_rate=1.0, error_status=(429,))
    try:
        response = _complete(base_url, messages=MESSAGES)
        recorded = httpx.get(f"{base_url}/_sim/requests").json()
    finally:
        stop_llm_sim(process)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["type"] == "rate_limit_exceeded"
    assert recorded == [{"model": "sim-1", "messages": MESSAGES}]


def test_fault_sequence_is_deterministic_per_seed(sim_url: str) -> None:
    """The same seed replays the same sequence of injected errors."""

    def statuses() -> list[int]:
        config = {"seed": 7, "error_rate": 0.5, "error_status": [500, 503]}
        httpx.put(f"{sim_url}/_sim/config", json=config).raise_for_status()
        return [_complete(sim_url, messages=MESSAGES).status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert {200, 500, 503} <= set(first)


def test_hanging_backend_is_cut_by_client_timeout(sim_url: str) -> None:
    """hang_rate=1 never answers; the client's timeout ends it and the sim stays healthy."""
    httpx.put(f"{sim_url}/_sim/config", json={"hang_rate": 1.0}).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{sim_url}/v1/chat/completions", json={"messages": MESSAGES}, timeout=0.5)
    assert httpx.get(f"{sim_url}/healthz").status_code == 200


def test_requests_are_recorded_and_cleared(sim_url: str) -> None:
    """/_sim/requests holds the exact bodies, oldest first, bounded by `record`; DELETE clears."""
    httpx.put(f"{sim_url}/_sim/config", json={"record": 2}).raise_for_status()
    for text in ("one", "two", "three"):
        _complete(sim_url, messages=[{"role": "user", "content": text}], temperature=0.1)
    recorded = httpx.get(f"{sim_url}/_sim/requests").json()
    assert [r["messages"] for r in recorded] == [
        [{"role": "user", "content": "two"}],
        [{"role": "user", "content": "three"}],
    ]
    assert recorded[0]["temperature"] == 0.1
    assert httpx.delete(f"{sim_url}/_sim/requests").status_code == 204
    assert httpx.get(f"{sim_url}/_sim/requests").json() == []


def test_put_config_changes_behaviour_at_runtime(sim_url: str) -> None:
    """PUT /_sim/config with a subset of fields slows the next request down."""
    assert _elapsed(lambda: _complete(sim_url, messages=MESSAGES)) < 0.3
    response = httpx.put(f"{sim_url}/_sim/config", json={"ttft_s": 0.5})
    assert response.json()["ttft_s"] == 0.5
    assert response.json()["error_status"] == [429, 500]  # untouched fields stay
    assert httpx.get(f"{sim_url}/_sim/config").json()["ttft_s"] == 0.5
    assert _elapsed(lambda: _complete(sim_url, messages=MESSAGES)) >= 0.45
    assert httpx.put(f"{sim_url}/_sim/config", json={"nope": 1}).status_code == 400
    assert httpx.put(f"{sim_url}/_sim/config", json={"error_rate": 2}).status_code == 400


def _elapsed(call: object) -> float:
    start = time.monotonic()
    call()  # type: ignore[operator]
    return time.monotonic() - start


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1]", b'{"model": "x"}', b'{"messages": []}', b'{"messages": "hi"}']
)
def test_malformed_requests_get_openai_style_400(sim_url: str, content: bytes) -> None:
    """Bad JSON or missing messages answer 400 with an OpenAI error body and are not recorded."""
    response = httpx.post(f"{sim_url}/v1/chat/completions", content=content)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{sim_url}/_sim/requests").json() == []


def test_models_are_listed(sim_url: str) -> None:
    """/v1/models lists the advertised ids in OpenAI's shape."""
    client = openai.OpenAI(base_url=f"{sim_url}/v1", api_key="x")
    ids = {model.id for model in client.models.list()}
    assert {"sim-1", "gpt-4o-mini", "gpt-4.1-mini"} <= ids


async def _concurrent_streams(base_url: str, count: int) -> list[str]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def one(i: int) -> str:
            body = {"messages": [{"role": "user", "content": f"n{i}"}], "stream": True}
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                text = ""
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        choices = json.loads(line[6:])["choices"]
                        text += choices[0]["delta"].get("content") or "" if choices else ""
                return text

        return await asyncio.gather(*(one(i) for i in range(count)))


async def test_200_concurrent_streams_all_complete(sim_url: str) -> None:
    """200 simultaneous streams, each with token delays, all finish with their own reply."""
    httpx.put(f"{sim_url}/_sim/config", json={"token_s": 0.01, "tokens": 20}).raise_for_status()
    texts = await _concurrent_streams(sim_url, 200)
    for i, text in enumerate(texts):
        assert text.startswith(reply_text([{"role": "user", "content": f"n{i}"}]))


async def _raw_stream(host: str, port: int, body: bytes) -> str:
    # HTTP/1.0 over a bare socket: the load test measures the sim, and httpx's per-line
    # parsing would cost more CPU than the server it is measuring.
    reader, writer = await asyncio.open_connection(host, port)
    head = f"POST /v1/chat/completions HTTP/1.0\r\nContent-Length: {len(body)}\r\n"
    writer.write(f"{head}Content-Type: application/json\r\n\r\n".encode() + body)
    raw = await reader.read(-1)
    writer.close()
    events = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: {")]
    choices = [json.loads(event)["choices"] for event in events]
    return "".join(c[0]["delta"].get("content") or "" for c in choices if c)


@pytest.mark.slow
async def test_600_concurrent_streams_in_one_process(sim_url: str) -> None:
    """600 streams of 40 tokens at 20 ms/token finish in about their simulated 1 s."""
    config = {"ttft_s": 0.2, "token_s": 0.02, "tokens": 40}
    httpx.put(f"{sim_url}/_sim/config", json=config).raise_for_status()
    url = httpx.URL(sim_url)
    bodies = [
        json.dumps({"messages": [{"role": "user", "content": f"n{i}"}], "stream": True}).encode()
        for i in range(600)
    ]
    start = time.monotonic()
    texts = await asyncio.gather(*(_raw_stream(url.host, url.port or 80, b) for b in bodies))
    elapsed = time.monotonic() - start
    for i, text in enumerate(texts):
        assert text == "".join(reply_tokens([{"role": "user", "content": f"n{i}"}], 40))
    assert elapsed < 3.0  # 1 s simulated; the margin absorbs a busy two-core CI machine


async def test_stats_report_the_in_flight_high_water_mark(sim_url: str) -> None:
    """/_sim/stats counts completions and the most answered at once, streams until their end."""
    httpx.put(f"{sim_url}/_sim/config", json={"ttft_s": 0.3}).raise_for_status()
    httpx.delete(f"{sim_url}/_sim/stats").raise_for_status()
    body = {"model": "sim-1", "messages": MESSAGES}
    async with httpx.AsyncClient(base_url=sim_url, timeout=10) as client:
        replies = await asyncio.gather(
            *(client.post("/v1/chat/completions", json=body) for _ in range(3)),
            client.post("/v1/chat/completions", json={**body, "stream": True}),
        )
        assert all(r.status_code == 200 for r in replies)
        stats = (await client.get("/_sim/stats")).json()
    assert stats == {"completions": 4, "in_flight": 0, "max_in_flight": 4}


def _sim_model(sim_url: str, *, streaming: bool) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=f"{sim_url}/v1",
        api_key="x",  # type: ignore[arg-type]
        model="sim-1",
        streaming=streaming,
        max_retries=0,
    )


def _calc_tool(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return "42"


def _fetch_tool(urls: list[str]) -> str:
    """Fetch the content of web pages."""
    return "page"


@pytest.mark.parametrize("streaming", [False, True])
async def test_tools_offered_get_a_call_then_an_answer_with_the_result(
    sim_url: str, streaming: bool
) -> None:
    """An agent's first request calls the tool with arguments from the input and the schema;
    after the tool result, the reply is text carrying what the tool returned."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import StructuredTool

    tools = [
        StructuredTool.from_function(_calc_tool, name="evaluate_expression"),
        StructuredTool.from_function(_fetch_tool, name="fetch_content"),
    ]
    model = _sim_model(sim_url, streaming=streaming).bind_tools(tools)
    history: list[Any] = [HumanMessage("please evaluate_expression of 6 * 7 now")]
    first = await model.ainvoke(history)
    assert first.tool_calls == [
        {
            "name": "evaluate_expression",
            "args": {"expression": "6 * 7"},
            "id": "call_sim0",
            "type": "tool_call",
        }
    ]
    history += [first, ToolMessage("42", tool_call_id="call_sim0")]
    second = await model.ainvoke(history)
    assert not second.tool_calls
    assert str(second.content).startswith("Tool results: evaluate_expression: 42 [")
    requests = httpx.get(f"{sim_url}/_sim/requests").json()
    assert [m["role"] for m in requests[1]["messages"]] == ["user", "assistant", "tool"]
    assert {t["function"]["name"] for t in requests[0]["tools"]} == {
        "evaluate_expression",
        "fetch_content",
    }


async def test_tools_named_in_the_input_are_called_in_turn(sim_url: str) -> None:
    """Two tools named in the input: two calls in the order named, then one answer; an
    input naming none calls the first tool; URL-like array arguments get the URLs."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import StructuredTool

    tools = [
        StructuredTool.from_function(_calc_tool, name="evaluate_expression"),
        StructuredTool.from_function(_fetch_tool, name="fetch_content"),
    ]
    model = _sim_model(sim_url, streaming=False).bind_tools(tools)
    history: list[Any] = [
        HumanMessage("fetch_content of https://example.com/a. then evaluate_expression 1+2")
    ]
    first = await model.ainvoke(history)
    assert first.tool_calls[0]["name"] == "fetch_content"
    assert first.tool_calls[0]["args"] == {"urls": ["https://example.com/a"]}
    history += [first, ToolMessage("page", tool_call_id=first.tool_calls[0]["id"])]
    second = await model.ainvoke(history)
    assert second.tool_calls[0]["name"] == "evaluate_expression"
    assert second.tool_calls[0]["args"] == {"expression": "1+2"}
    assert second.tool_calls[0]["id"] != first.tool_calls[0]["id"]
    history += [second, ToolMessage("3", tool_call_id=second.tool_calls[0]["id"])]
    third = await model.ainvoke(history)
    assert str(third.content).startswith(
        "Tool results: fetch_content: page; evaluate_expression: 3 ["
    )
    plain = await model.ainvoke([HumanMessage("hello")])
    assert plain.tool_calls[0]["name"] == "evaluate_expression"
    assert plain.tool_calls[0]["args"] == {"expression": "hello"}


# --- Anthropic Messages and Gemini ------------------------------------------------------------


ANTHROPIC_BODY = {
    "model": "claude-sim",
    "max_tokens": 64,
    "system": "You are terse.",
    "messages": [{"role": "user", "content": "What is  the capital of France?"}],
}


def test_anthropic_sdk_reads_whole_and_streamed_replies(sim_url: str) -> None:
    """The official Anthropic SDK parses both; the reply is the OpenAI route's for the same
    conversation; each request is recorded with its API, path and headers."""
    import anthropic

    from flowfleet.llm_sim_wire import anthropic_messages

    client = anthropic.Anthropic(api_key="k-anthropic", base_url=sim_url, max_retries=0)
    expected = reply_text(MESSAGES)
    assert anthropic_messages(ANTHROPIC_BODY) == MESSAGES
    whole = client.messages.create(**ANTHROPIC_BODY)  # type: ignore[call-overload]
    assert [block.text for block in whole.content] == [expected]
    assert whole.stop_reason == "end_turn"
    assert whole.usage.output_tokens == len(reply_tokens(MESSAGES))
    with client.messages.stream(**ANTHROPIC_BODY) as stream:  # type: ignore[arg-type]
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == len(reply_tokens(MESSAGES))
    assert "".join(pieces) == expected
    assert final.usage.input_tokens > 0
    assert final.stop_reason == "end_turn"
    calls = httpx.get(f"{sim_url}/_sim/calls").json()
    assert [(c["api"], c["path"]) for c in calls] == [("anthropic", "/v1/messages")] * 2
    headers = calls[0]["headers"]
    # SDK releases differ: x-api-key, or the key as a Bearer token.
    assert headers.get("x-api-key") == "k-anthropic" or (
        headers.get("authorization") == "Bearer k-anthropic"
    )
    assert calls[1]["body"]["stream"] is True


def test_anthropic_tools_get_one_tool_use_block(sim_url: str) -> None:
    body = {
        **ANTHROPIC_BODY,
        "tools": [
            {
                "name": "answer",
                "description": "d",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    }
    reply = httpx.post(f"{sim_url}/v1/messages", json=body).json()
    assert reply["stop_reason"] == "tool_use"
    (block,) = reply["content"]
    assert block["type"] == "tool_use"
    assert block["name"] == "answer"
    assert block["input"] == {"city": "What is  the capital of France?"}


def test_gemini_sdk_reads_whole_and_streamed_replies(sim_url: str) -> None:
    from google import genai
    from google.genai import types

    from flowfleet.llm_sim_wire import gemini_messages

    client = genai.Client(api_key="k-gemini", http_options=types.HttpOptions(base_url=sim_url))
    config = types.GenerateContentConfig(system_instruction="You are terse.")
    question = "What is  the capital of France?"
    expected = reply_text(MESSAGES)
    whole = client.models.generate_content(model="gemini-sim", contents=question, config=config)
    assert whole.text == expected
    assert whole.usage_metadata is not None
    assert whole.usage_metadata.candidates_token_count == len(reply_tokens(MESSAGES))
    pieces = [
        chunk.text
        for chunk in client.models.generate_content_stream(
            model="gemini-sim", contents=question, config=config
        )
    ]
    assert len(pieces) == len(reply_tokens(MESSAGES))
    assert "".join(pieces) == expected
    calls = httpx.get(f"{sim_url}/_sim/calls").json()
    assert [c["api"] for c in calls] == ["gemini", "gemini"]
    assert calls[0]["path"].endswith("/models/gemini-sim:generateContent")
    assert calls[1]["path"].endswith("/models/gemini-sim:streamGenerateContent")
    assert calls[0]["headers"]["x-goog-api-key"] == "k-gemini"
    assert gemini_messages(calls[0]["body"]) == MESSAGES


def test_gemini_stream_without_sse_is_one_json_array(sim_url: str) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    url = f"{sim_url}/v1beta/models/g:streamGenerateContent"
    chunks = httpx.post(url, json=body).json()
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == reply_text([{"role": "user", "content": "hi"}])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "usageMetadata" in chunks[-1]


def test_anthropic_and_gemini_routes_inject_faults_in_their_error_shapes(sim_url: str) -> None:
    httpx.put(f"{sim_url}/_sim/config", json={"error_rate": 1, "error_status": [429]})
    anthropic_reply = httpx.post(f"{sim_url}/v1/messages", json=ANTHROPIC_BODY)
    assert anthropic_reply.status_code == 429
    assert anthropic_reply.headers["retry-after"] == "1"
    assert anthropic_reply.json()["error"]["type"] == "rate_limit_error"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    gemini_reply = httpx.post(f"{sim_url}/v1beta/models/g:generateContent", json=body)
    assert gemini_reply.status_code == 429
    assert gemini_reply.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
