"""The backend client reads responses with pydantic's validator and gives what the SDK gives."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletionChunk

from flows.models import JsonChatCompletions, ValidatingAsyncOpenAI, chat_model
from flows.routing import ModelSpec

CHUNK: dict[str, Any] = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "created": 1700000000,
    "model": "m",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}],
    "x_server_extra": {"kept": True},
}


def _read(client: openai.AsyncOpenAI, data: dict[str, Any]) -> Any:
    response = httpx2.Response(200, request=httpx2.Request("POST", "http://sim/v1"))
    return client._process_response_data(data=data, cast_to=ChatCompletionChunk, response=response)


@pytest.mark.parametrize(
    "data",
    [
        CHUNK,
        # What a lenient OpenAI-compatible server might send: no `created`, another `object`.
        {k: v for k, v in CHUNK.items() if k != "created"} | {"object": "chunk"},
    ],
    ids=["well-formed", "lenient-server"],
)
def test_chunks_are_read_as_the_sdk_reads_them(data: dict[str, Any]) -> None:
    ours = ValidatingAsyncOpenAI(api_key="k", base_url="http://sim/v1")
    stock = openai.AsyncOpenAI(api_key="k", base_url="http://sim/v1")
    read, expected = _read(ours, data), _read(stock, data)
    assert type(read) is ChatCompletionChunk
    assert read.model_dump() == expected.model_dump()


def test_responses_take_pydantics_validator_not_the_sdks_field_by_field_build() -> None:
    # Only validation coerces: a numeric string stays a string in the SDK's construct.
    data = CHUNK | {"created": "1700000000"}
    ours = _read(ValidatingAsyncOpenAI(api_key="k", base_url="http://sim/v1"), data)
    stock = _read(openai.AsyncOpenAI(api_key="k", base_url="http://sim/v1"), data)
    assert stock.created == "1700000000"
    assert ours.created == 1700000000


async def test_streamed_and_whole_replies_match_the_stock_client(sim: str) -> None:
    messages = [HumanMessage("say something")]
    ours = chat_model(ModelSpec(model_name="m"))
    stock = ChatOpenAI(model="m", base_url=sim, api_key="k", stream_usage=True)
    assert isinstance(ours.root_async_client, ValidatingAsyncOpenAI)

    async def streamed(model: ChatOpenAI) -> AIMessageChunk:
        total = None
        async for chunk in model.astream(messages):
            total = chunk if total is None else total + chunk
        assert isinstance(total, AIMessageChunk)
        return total

    mine, theirs = await streamed(ours), await streamed(stock)
    assert mine.content
    assert mine.content == theirs.content
    assert mine.usage_metadata == theirs.usage_metadata
    whole, stock_whole = await ours.ainvoke(messages), await stock.ainvoke(messages)
    assert whole.content == stock_whole.content == mine.content
    assert whole.usage_metadata == stock_whole.usage_metadata


COMPLETION: dict[str, Any] = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "finish_reason": "stop",
        }
    ],
}


def _recording_client(cls: type[openai.AsyncOpenAI], seen: list[httpx2.Request]) -> Any:
    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=COMPLETION)

    transport = httpx2.MockTransport(answer)
    return cls(
        api_key="sk-test",
        base_url="http://sim/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=transport),
    )


def _weather(city: str) -> str:
    """The weather in a city."""
    return city


def _payloads() -> list[dict[str, Any]]:
    # Request bodies as LangChain builds them: plain turns, a multimodal part, an earlier
    # tool call and its result, bound tools, stop words, JSON mode, streaming with usage.
    from langchain_core.messages import AIMessage, SystemMessage, ToolMessage

    llm = ChatOpenAI(model="m", api_key="k", base_url="http://sim/v1", temperature=0.2)
    turns = [
        SystemMessage("be brief"),
        HumanMessage(
            [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ]
        ),
        AIMessage("", tool_calls=[{"id": "t1", "name": "_weather", "args": {"city": "Oslo"}}]),
        ToolMessage("rain", tool_call_id="t1"),
    ]
    tools = llm.bind_tools([_weather]).kwargs  # type: ignore[attr-defined]
    return [
        llm._get_request_payload([HumanMessage("hi")]),
        llm._get_request_payload(turns, stop=["\n\n"], **tools),
        llm._get_request_payload(turns, response_format={"type": "json_object"}),
        ChatOpenAI(model="m", api_key="k", streaming=True, stream_usage=True)._get_request_payload(
            turns, stream_options={"include_usage": True}
        ),
    ]


@pytest.mark.parametrize("payload", _payloads(), ids=["plain", "tools", "json", "stream"])
async def test_requests_go_out_exactly_as_the_sdk_sends_them(payload: dict[str, Any]) -> None:
    ours: list[httpx2.Request] = []
    theirs: list[httpx2.Request] = []
    client = _recording_client(ValidatingAsyncOpenAI, ours)
    stock = _recording_client(openai.AsyncOpenAI, theirs)
    body = {**payload, "stream": False}  # a canned whole reply answers both
    mine = await JsonChatCompletions(client).with_raw_response.create(**body)
    expected = await stock.chat.completions.with_raw_response.create(**body)
    assert mine.parse().model_dump() == expected.parse().model_dump()
    sent, stock_sent = ours[0], theirs[0]
    assert (sent.method, sent.url) == (stock_sent.method, stock_sent.url)
    assert json.loads(sent.content) == json.loads(stock_sent.content)
    assert sent.headers["authorization"] == stock_sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["x-stainless-raw-response"] == "true"


def test_the_sdks_transform_leaves_langchains_bodies_unchanged() -> None:
    # Why posting the body as it is is safe: on each body LangChain builds, the transform
    # the SDK's `create` applies is the identity, streaming or not.
    from openai._utils import maybe_transform
    from openai.types.chat import completion_create_params as params

    for payload in _payloads():
        for stream, shape in (
            (False, params.CompletionCreateParamsNonStreaming),
            (True, params.CompletionCreateParamsStreaming),
        ):
            body = {**payload, "stream": stream}
            assert maybe_transform(body, shape) == body


async def test_the_request_skips_the_sdks_transform(monkeypatch: pytest.MonkeyPatch) -> None:
    # The point of JsonChatCompletions: the stock `create` runs the transform, ours never.
    from openai.resources.chat.completions import completions as sdk_completions

    calls: list[object] = []

    async def counting(data: dict[str, object], expected_type: object) -> object:
        calls.append(expected_type)  # and drop the unset arguments, as the transform does
        return {k: v for k, v in data.items() if not isinstance(v, openai.Omit | openai.NotGiven)}

    monkeypatch.setattr(sdk_completions, "async_maybe_transform", counting)
    body = {**_payloads()[1], "stream": False}
    stock = _recording_client(openai.AsyncOpenAI, [])
    await stock.chat.completions.create(**body)
    assert len(calls) == 1  # the stock path goes through it
    await JsonChatCompletions(_recording_client(ValidatingAsyncOpenAI, [])).create(**body)
    assert len(calls) == 1
