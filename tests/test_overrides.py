"""Guards for the library internals flowfleet overrides (docs/architecture.md, "Overrides").

Each test checks the shape the override relies on (the method exists with the arguments we
pass, the library still reaches it the way we hook it) so that a release that changes it
fails here, by name, when `make lock` moves a pin, instead of in production. The behaviour
of each override against the stock library is tested beside its module (named per test).
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import httpx2
import openai
import pytest
from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import base as kombu_virtual
from langchain_openai.chat_models.base import BaseChatOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from flows.models import JsonChatCompletions, ValidatingAsyncOpenAI
from shared.queue import RUN_TASK, make_celery, run_message
from shared.settings import Settings
from worker.broker import Channel

WHAT_TO_DO = "see docs/architecture.md, 'Overrides': adapt the override or keep the pin"


def _params(func: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(func).parameters)


# --- openai: AsyncOpenAI._process_response_data (flows/models.py ValidatingAsyncOpenAI) ------
# Behaviour: tests/flows/test_model_client.py::test_chunks_are_read_as_the_sdk_reads_them.

COMPLETION: dict[str, Any] = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
}
CHUNK: dict[str, Any] = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "created": 1700000000,
    "model": "m",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}}],
}


def _client(cls: type[openai.AsyncOpenAI], stream: bool) -> Any:
    def answer(request: httpx2.Request) -> httpx2.Response:
        if not stream:
            return httpx2.Response(200, json=COMPLETION)
        sse = f"data: {json.dumps(CHUNK)}\n\ndata: [DONE]\n\n"
        return httpx2.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    return cls(
        api_key="k",
        base_url="http://sim/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(answer)),
    )


def test_openai_process_response_data_keeps_its_keyword_signature() -> None:
    params = _params(openai.AsyncOpenAI._process_response_data)
    assert list(params) == ["self", "data", "cast_to", "response"], WHAT_TO_DO
    assert all(p.kind is p.KEYWORD_ONLY for name, p in params.items() if name != "self")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_openai_reads_every_response_through_process_response_data(stream: bool) -> None:
    # The hook is only worth having while the SDK parses whole replies and each streamed
    # chunk through the client's method: count the calls that reach our override.
    seen: list[type[Any]] = []

    class Counting(ValidatingAsyncOpenAI):
        def _process_response_data(self, *, data: object, cast_to: Any, response: Any) -> Any:
            seen.append(cast_to)
            return super()._process_response_data(data=data, cast_to=cast_to, response=response)

    client = _client(Counting, stream)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        chunks = [c async for c in await JsonChatCompletions(client).create(**body, stream=True)]
        assert [type(c) for c in chunks] == [ChatCompletionChunk]
        assert seen == [ChatCompletionChunk], WHAT_TO_DO
    else:
        reply = await JsonChatCompletions(client).create(**body)
        assert type(reply) is ChatCompletion
        assert seen == [ChatCompletion], WHAT_TO_DO
    await client.close()


# --- openai: AsyncCompletions.create (flows/models.py JsonChatCompletions) -------------------
# Behaviour: tests/flows/test_model_client.py::test_requests_go_out_exactly_as_the_sdk_sends_them
# and ::test_the_sdks_transform_leaves_langchains_bodies_unchanged.


def test_openai_completions_create_takes_the_request_options_we_forward() -> None:
    params = _params(openai.resources.chat.AsyncCompletions.create)
    for name in ("extra_headers", "extra_query", "extra_body", "timeout"):
        assert name in params, f"AsyncCompletions.create lost {name}: {WHAT_TO_DO}"
    post = _params(openai.AsyncOpenAI.post)
    for name in ("path", "cast_to", "body", "options", "stream", "stream_cls"):
        assert name in post, f"AsyncOpenAI.post lost {name}: {WHAT_TO_DO}"
    # The option keys JsonChatCompletions.create fills in.
    fields = set(openai._models.FinalRequestOptions.model_fields)
    assert {"headers", "params", "extra_json", "timeout"} <= fields, WHAT_TO_DO


async def test_openai_with_raw_response_reaches_the_overridden_create() -> None:
    calls: list[dict[str, Any]] = []

    class Counting(JsonChatCompletions):
        async def create(self, **body: Any) -> Any:  # type: ignore[override]
            calls.append(body)
            return await super().create(**body)

    client = _client(ValidatingAsyncOpenAI, stream=False)
    raw = await Counting(client).with_raw_response.create(model="m", messages=[])
    assert raw.parse().choices[0].message.content == "ok"
    assert [c["messages"] for c in calls] == [[]], WHAT_TO_DO
    # The raw wrapper asks for the raw response by a header, which our create forwards.
    assert calls[0]["extra_headers"] == {"X-Stainless-Raw-Response": "true"}, WHAT_TO_DO
    await client.close()


def test_langchain_openai_calls_its_async_client_by_create() -> None:
    # LangChain reaches JsonChatCompletions as `async_client` (chat_model passes it): it must
    # still call `create` and `with_raw_response.create` on it, not another SDK entry point.
    source = inspect.getsource(BaseChatOpenAI._agenerate) + inspect.getsource(
        BaseChatOpenAI._astream
    )
    assert re.search(r"self\.async_client\.with_raw_response\.create\(", source), WHAT_TO_DO
    assert re.search(r"self\.async_client\.create\(", source), WHAT_TO_DO
    fields = BaseChatOpenAI.model_fields
    assert "async_client" in fields, WHAT_TO_DO
    assert "root_async_client" in fields, WHAT_TO_DO


# --- kombu: redis Channel.conn_or_acquire (worker/broker.py) -------------------------------
# Behaviour: tests/worker/test_broker.py (one shared client, follows a replaced pool, acks).


def test_kombu_conn_or_acquire_keeps_its_signature_and_helpers() -> None:
    stock = kombu_redis.Channel.conn_or_acquire
    assert list(_params(stock)) == ["self", "client"], WHAT_TO_DO
    assert _params(stock)["client"].default is None
    # What our Channel uses to make and follow the client.
    assert callable(kombu_redis.Channel._create_client), WHAT_TO_DO
    assert isinstance(inspect.getattr_static(kombu_redis.Channel, "pool"), property), WHAT_TO_DO
    assert "self._pool = None" in inspect.getsource(kombu_redis.Channel._disconnect_pools).replace(
        "self._async_pool = self._pool = None", "self._pool = None"
    ), WHAT_TO_DO
    assert issubclass(Channel, kombu_redis.Channel)


def test_kombu_still_sends_deliveries_and_acks_through_conn_or_acquire() -> None:
    # The gain: kombu's QoS records each delivery and each ack through this method. If it
    # stops doing so, the override is dead weight (and the measurement must be redone).
    qos = inspect.getsource(kombu_redis.QoS)
    assert qos.count("conn_or_acquire(") >= 3, WHAT_TO_DO
    assert "def pipe_or_acquire" in qos, WHAT_TO_DO
    assert kombu_redis.Transport.Channel is kombu_redis.Channel  # how a Transport makes channels


# --- celery: the message shared/queue.py writes by hand -------------------------------------
# Behaviour: tests/shared/test_queue.py::test_publish_runs_writes_what_send_task_writes
# (the same message through Redis, field by field).


class _Defaults:
    default_priority = 0


def test_celery_task_message_has_the_fields_run_message_writes() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", queue_name="q")
    app = make_celery(settings)
    assert app.conf.task_protocol == 2, WHAT_TO_DO
    celerys = app.amqp.as_task_v2("tid", RUN_TASK, args=["run-1"])
    ours = json.loads(run_message(settings, "run-1"))
    assert set(ours["headers"]) - {"run_id"} == set(celerys.headers), WHAT_TO_DO
    args, kwargs, embed = celerys.body
    assert (args, kwargs) == (["run-1"], {})
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}, WHAT_TO_DO
    envelope = kombu_virtual.Channel.prepare_message(
        _Defaults(), "body", headers={}, properties={"delivery_info": {}}
    )
    assert set(envelope) == set(ours), WHAT_TO_DO


def test_the_architecture_page_lists_every_guard() -> None:
    from shared.settings import REPO_ROOT

    page = (REPO_ROOT / "docs" / "architecture.md").read_text()
    overrides = page.split("## Overrides", 1)[1].split("\n## ", 1)[0]
    guards = [name for name in globals() if name.startswith("test_") and "architecture" not in name]
    assert [g for g in guards if g not in overrides] == []
    named = set(re.findall(r"`(test_[a-z_]+)`", overrides))
    assert named - set(guards) == set(), "the page names guards that do not exist"
