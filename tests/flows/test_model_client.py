"""The backend client reads responses with pydantic's validator and gives what the SDK gives."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletionChunk

from flows.models import ValidatingAsyncOpenAI, chat_model
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
