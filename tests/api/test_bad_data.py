"""A client's bad data fails that client's request with a 4xx, never another's, never a 5xx.

NUL bytes and lone surrogates are refused where they arrive (naming the field); what the
database still refuses is a 4xx, not "database unreachable"; a shared write that one bad
row fails is retried row by row; tampered cursors, bombs of nesting and odd chat content
parts are 4xx; with auth off, the Host and the chat endpoint's content type are checked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from api.run_writer import RunWriter
from api.services.flows import FlowRef
from api.services.runs import new_run
from shared.db import create_engine, session_factory
from shared.errors import InvalidRequest
from shared.models import Run
from shared.schemas import RunCreate
from shared.settings import REPO_ROOT, Settings
from tests.support.stack import Stack

PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("raw", "field", "names"),
    [
        (b'{"input": "a\\u0000b"}', "input", "input"),
        (b'{"input": "half a pair \\ud83d"}', "input", "input"),
        (b'{"input": "x", "session_id": "s\\u0000"}', "session_id", "session_id"),
        (b'{"input": "x", "tweaks": {"n": {"f": ["ok", "\\u0000"]}}}', "tweaks", "tweaks.n.f[1]"),
        (b'{"input": "x", "metadata": {"k\\udc00": 1}}', "metadata", "metadata.k"),
        (b'{"input": "x", "webhook": "http://localhost/\\u0000"}', "webhook", "webhook"),
    ],
)
def test_nul_and_lone_surrogates_are_422_naming_the_field(
    client: httpx.Client, raw: bytes, field: str, names: str
) -> None:
    problem = _problem(client.post("/v1/flows/prompt/runs", content=raw, headers=JSON), 422)
    assert problem["code"] == "invalid_request"
    assert field in [e["field"] for e in problem["errors"]]
    assert names in problem["detail"]


def test_a_bad_string_in_a_batch_names_its_input(client: httpx.Client) -> None:
    raw = b'{"inputs": [{"input": "fine"}, {"input": "bad \\u0000"}]}'
    problem = _problem(client.post("/v1/flows/prompt/runs:batch", content=raw, headers=JSON), 422)
    assert "inputs.1.input" in [e["field"] for e in problem["errors"]]


def test_nul_in_a_query_parameter_is_422_not_503(client: httpx.Client) -> None:
    problem = _problem(client.get("/v1/runs?session_id=a%00b"), 422)
    assert problem["field"] == "session_id"
    problem = _problem(client.get("/v1/sessions/s%00x/messages"), 422)
    assert problem["code"] == "invalid_request"


def test_an_over_long_name_is_4xx_not_503(client: httpx.Client) -> None:
    export = json.loads((REPO_ROOT / "examples" / "flows" / "Basic Prompting.json").read_text())
    export["name"] = "n" * 5000  # the column holds 256
    response = client.put("/v1/flows/long-named", json=export)
    client.delete("/v1/flows/long-named")
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("0001-01-01T00:00:00+14:00|x"),  # overflows when made UTC
        _cursor("9999-12-31T23:59:59-14:00|x"),
        _cursor("2026-01-01T00:00:00|x"),  # naive
        _cursor("2026-01-01T00:00:00+00:00|x\x00y"),
        _cursor("no separator"),
        "%%%not-base64",
        base64.urlsafe_b64encode(b"\xff\xfe|").decode(),
    ],
)
def test_a_tampered_cursor_is_422(client: httpx.Client, cursor: str) -> None:
    problem = _problem(client.get("/v1/runs", params={"cursor": cursor}), 422)
    assert problem["field"] == "cursor"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/flows/prompt/runs"),
        ("PUT", "/v1/flows/deep-one"),
        ("POST", "/v1/chat/completions"),
    ],
)
def test_a_50000_deep_json_body_is_4xx(client: httpx.Client, method: str, path: str) -> None:
    deep = b'{"input": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    response = client.request(method, path, content=deep, headers=JSON)
    assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in response.text


def test_a_chat_content_part_whose_text_is_not_a_string_is_422(client: httpx.Client) -> None:
    content = [{"type": "text", "text": "fine"}, {"type": "text", "text": {"not": "text"}}]
    body = {"model": "prompt", "messages": [{"role": "user", "content": content}]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["param"] == "messages[0].content[1].text"
    assert error["type"] == "invalid_request_error"


def test_a_chat_message_with_a_nul_is_422_naming_it(client: httpx.Client) -> None:
    raw = b'{"model": "prompt", "messages": [{"role": "user", "content": "a\\u0000"}]}'
    response = client.post("/v1/chat/completions", content=raw, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "messages[0].content"


def test_the_chat_endpoint_requires_json(client: httpx.Client) -> None:
    # What a cross-origin form can send without a preflight.
    body = json.dumps({"model": "prompt", "messages": [{"role": "user", "content": "hi"}]})
    response = client.post(
        "/v1/chat/completions", content=body, headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert client.get("/v1/runs", params={"limit": 1}).status_code == 200


def test_with_auth_off_a_foreign_host_is_refused(client: httpx.Client, stack: Stack) -> None:
    # A DNS-rebinding page reaches 127.0.0.1 under its own name, which the Host header carries.
    refused = client.get("/v1/runs", headers={"host": "attacker.example"})
    problem = _problem(refused, 400)
    assert problem["code"] == "invalid_host"
    assert "FLOWFLEET_ALLOWED_HOSTS" in problem["detail"]
    for host in ("localhost", f"localhost:{stack.api.port}", "127.0.0.1", "[::1]:8000"):
        assert client.get("/v1/runs", headers={"host": host}).status_code == 200, host
    # Probes name whatever address they dial.
    assert client.get("/healthz", headers={"host": "10.1.2.3:8000"}).status_code == 200


async def test_a_poisoned_group_write_fails_only_its_own_request(stack: Stack) -> None:
    """One request's row the database refuses (here an over-long session id and a NUL,
    which the edge would have refused) fails that request with a 422; the rows written in
    the same statement are retried one by one and every other request is accepted."""
    settings = Settings(
        database_url=stack.env["FLOWFLEET_DATABASE_URL"],
        redis_url=stack.env["FLOWFLEET_REDIS_URL"],
        queue_name=f"fftest-poison-{uuid.uuid4().hex[:8]}",  # no worker reads it
    )
    engine = create_engine(settings)
    redis = Redis.from_url(settings.redis_url)
    writer = RunWriter(session_factory(engine), redis, settings)
    flow = FlowRef("prompt", "python", "poison-test")
    good = [new_run(flow, RunCreate(input=f"good {i}"), "anonymous") for i in range(40)]
    poisoned = [
        new_run(flow, RunCreate.model_construct(input="nul \x00", tweaks={}, metadata={}), "a"),
        new_run(flow, RunCreate.model_construct(session_id="s" * 300, tweaks={}, metadata={}), "a"),
    ]
    runs = [*good[:20], poisoned[0], *good[20:], poisoned[1]]
    ids = [run.id for run in runs]
    try:
        outcomes = await asyncio.gather(
            *(writer.accept(run) for run in runs), return_exceptions=True
        )
        async with session_factory(engine)() as session:
            stored = set(await session.scalars(select(Run.id).where(Run.id.in_(ids))))
            count = await session.scalar(select(func.count()).where(Run.id.in_(ids)))
        queued = await redis.llen(settings.queue_name)
    finally:
        await redis.delete(settings.queue_name)
        async with session_factory(engine)() as session:
            await session.execute(Run.__table__.delete().where(Run.id.in_(ids)))
            await session.commit()
        await redis.aclose()
        await engine.dispose()

    by_id = dict(zip(ids, outcomes, strict=True))
    assert all(by_id[run.id] is None for run in good)
    for run in poisoned:
        error = by_id[run.id]
        assert isinstance(error, InvalidRequest), error
        assert error.status == 422
        assert "cannot be stored" in error.message
    assert stored == {run.id for run in good}
    assert count == len(good)
    assert queued == len(good)


def test_response_cache_entries_are_per_owner() -> None:
    """A cached answer is keyed by its owner too: one tenant never gets (or times) another's."""
    from types import SimpleNamespace

    from worker.response_cache import cache_key

    ctx = SimpleNamespace(settings=Settings())
    flow = FlowRef("prompt", "python", "v1")
    mine = new_run(flow, RunCreate(input="same question"), "key-a")
    theirs = new_run(flow, RunCreate(input="same question"), "key-b")
    again = new_run(flow, RunCreate(input="same question"), "key-a")
    assert cache_key(ctx, mine) != cache_key(ctx, theirs)  # type: ignore[arg-type]
    assert cache_key(ctx, mine) == cache_key(ctx, again)  # type: ignore[arg-type]


def test_the_database_errors_of_bad_data_are_permanent_and_outages_transient() -> None:
    """One classification for the API and the worker (shared/db_errors.py)."""
    from sqlalchemy.exc import DataError, IntegrityError, OperationalError

    from shared.db_errors import client_error, is_bad_data, is_transient

    nul = DataError("INSERT", {}, Exception("PostgreSQL text fields cannot contain NUL"))
    dup = IntegrityError("INSERT", {}, Exception("duplicate key value\nDETAIL: Key (id)=(x)"))
    down = OperationalError("SELECT 1", {}, Exception("connection refused"))
    surrogate = UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
    for bad in (nul, dup, surrogate):
        assert is_bad_data(bad)
        assert not is_transient(bad)
    assert is_transient(down)
    assert client_error(down) is None
    assert client_error(nul).status == 422  # type: ignore[union-attr]
    assert client_error(dup).status == 409  # type: ignore[union-attr]
    assert "Key (id)" not in client_error(dup).message  # type: ignore[union-attr]
