"""LLM simulator: deterministic replies, tunable latency and injected faults, in three APIs.

It speaks OpenAI chat completions (``POST /v1/chat/completions``), Anthropic Messages
(``POST /v1/messages``) and Gemini (``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent``, also under ``/v1/models/``), each streaming or not. Anthropic
and Gemini requests are read as the OpenAI-style message list they amount to
(``anthropic_messages``, ``gemini_messages``), so the reply to the same conversation is the
same text in every API. Every request is recorded (``GET /_sim/requests``: bodies as sent;
``GET /_sim/calls``: API, path, headers and body), so a test can check what reached a
backend, credentials included.

Tests and benchmarks point `langchain-openai` (or the `openai` client) at it instead of a real
model server. The reply depends only on the request messages (see `reply_text`), so a test can
compute what a flow must have produced.

Structured requests get JSON instead of text (see `structured_reply`): with `tools`, one
call of the chosen (else the first) function whose arguments fit its schema; with a
`response_format` of type `json_schema`, content JSON that fits the schema. Values are
deterministic: strings are the last user text, numbers 0, booleans false, objects every
property, arrays `minItems` items (none without it).

Agents (tools offered, none forced; see `tool_turn`): the sim calls the tools the user's
message names (else the first), one a turn, with arguments derived from that message (URLs
for url-like fields, an arithmetic expression for expression-like ones, else the text), then
answers with text holding what each tool returned; an argument with a non-empty default keeps it.
`plan_reply` picks among these answers; the Anthropic and Gemini routes use it too, on the
OpenAI chat request theirs amounts to, so tool calling works the same in all three APIs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import hashlib
import json
import random
import re
import struct
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODELS = ("sim-1", "gpt-4o-mini", "gpt-4.1-mini")
DEFAULT_MODEL = MODELS[0]
PAD_TOKEN = " ~"
HANG_S = 3600.0
_TOKEN_RE = re.compile(r"\s*\S+")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}


@dataclass
class SimConfig:
    """Latency, length and fault settings; changeable at runtime through PUT /_sim/config."""

    ttft_s: float = 0.0
    token_s: float = 0.0
    tokens: int = 0
    error_rate: float = 0.0
    error_status: tuple[int, ...] = (429, 500)
    hang_rate: float = 0.0
    seed: int = 0
    record: int = 1000


# --- the deterministic reply ---------------------------------------------------------------


def message_text(message: dict[str, Any]) -> str:
    """The text of a message: its string content, or its text parts joined; "" for None."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return str(content)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the conversation's last user message ("" without one)."""
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


def expected_digest(messages: list[dict[str, Any]]) -> str:
    """The `role:sha8` list that ends every reply, proving which messages the sim received."""
    return " ".join(
        f"{m.get('role', '')}:{hashlib.sha256(message_text(m).encode()).hexdigest()[:8]}"
        for m in messages
    )


def reply_text(messages: list[dict[str, Any]]) -> str:
    """The reply the sim gives to these messages (before padding to `tokens`)."""
    last_user = last_user_text(messages)
    return f"You said: {last_user} [{expected_digest(messages)}]"


def sample_value(schema: Any, text: str, defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A deterministic value fitting a JSON schema: strings `text`, numbers 0, booleans false."""
    if not isinstance(schema, dict) or depth > 32:
        return None
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return sample_value(defs.get(ref.rsplit("/", 1)[-1]), text, defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if o.get("type") != "null"]
        if options:
            return sample_value(options[0], text, defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: sample_value(sub, text, defs, depth + 1) for name, sub in props.items()}
    if kind == "array":
        item = sample_value(schema.get("items", {}), text, defs, depth + 1)
        return [item] * int(schema.get("minItems") or 0)
    return {"string": text, "integer": 0, "number": 0, "boolean": False}.get(str(kind))


def structured_reply(body: dict[str, Any]) -> tuple[str | None, str] | None:
    """For a structured request: (function name, or None for content; the JSON). Else None."""
    messages = body["messages"]
    text = last_user_text(messages)
    tools = [
        t["function"] for t in body.get("tools") or [] if isinstance(t, dict) and "function" in t
    ]
    if tools:
        choice = body.get("tool_choice")
        wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        tool = next((t for t in tools if t.get("name") == wanted), tools[0])
        return str(tool.get("name")), json.dumps(sample_value(tool.get("parameters"), text))
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return None, json.dumps(sample_value(schema, text))
    return None


# --- tool-calling agents --------------------------------------------------------------------

_URL_RE = re.compile(r"https?://[^\s'\"<>)\]]+")
# A run of numbers, operators and parentheses that holds at least one operator.
_EXPRESSION_RE = re.compile(r"[\d(][\d\s.+\-*/%()]*[+\-*/%][\d\s.+\-*/%()]*[\d)]")


def _string_argument(name: str, text: str) -> str:
    """A string argument from the user's text: a URL for url-like names, an arithmetic
    expression for expression-like names, else the whole text."""
    lowered = name.lower()
    if "url" in lowered and (url := _URL_RE.search(text)):
        return url.group(0).rstrip(".,;")
    if ("expression" in lowered or "math" in lowered) and (expr := _EXPRESSION_RE.search(text)):
        return expr.group(0).strip()
    return text


def tool_arguments(schema: Any, text: str) -> dict[str, Any]:
    """Arguments for a tool call derived from the user's text and the tool's JSON schema."""
    props = (schema or {}).get("properties") or {} if isinstance(schema, dict) else {}
    args: dict[str, Any] = {}
    for name, sub in props.items():
        sub = sub if isinstance(sub, dict) else {}
        kind = sub.get("type")
        if sub.get("default") not in (None, "", [], {}):
            args[name] = sub["default"]  # an optional argument keeps its default
        elif kind == "string" and not sub.get("enum"):
            args[name] = _string_argument(name, text)
        elif kind == "array" and (sub.get("items") or {}).get("type") == "string":
            urls = [u.rstrip(".,;") for u in _URL_RE.findall(text)] if "url" in name.lower() else []
            args[name] = urls or [_string_argument(name, text)]
        else:
            args[name] = sample_value(sub, text, schema.get("$defs"))
    return args


def tool_turn(body: dict[str, Any]) -> tuple[str, str, str] | str | None:
    """An agent's next step, for a request offering tools without forcing one.

    Plan: the offered tools whose names the last user message mentions, in the order it
    mentions them, else the first tool. Each turn calls the next planned tool not yet
    called since that user message: ``(call id, name, arguments JSON)``; once every planned
    tool has answered, the text reply ``Tool results: name: result; ... [digest]``. None
    for requests without tools or that force a function (``structured_reply`` answers those).
    """
    tools = [
        t["function"] for t in body.get("tools") or [] if isinstance(t, dict) and "function" in t
    ]
    choice = body.get("tool_choice")
    if not tools or isinstance(choice, dict):
        return None
    messages = body["messages"]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    text = message_text(messages[last_user]) if last_user >= 0 else ""
    since = messages[last_user + 1 :]
    called = [
        call.get("function", {}).get("name")
        for m in since
        if m.get("role") == "assistant"
        for call in m.get("tool_calls") or []
    ]
    results = [m for m in since if m.get("role") == "tool"]
    lowered = text.lower()
    named = sorted(
        (t for t in tools if str(t.get("name", "")).lower() in lowered),
        key=lambda t: lowered.index(str(t.get("name")).lower()),
    )
    plan = named or tools[:1]
    pending = [t for t in plan if t.get("name") not in called]
    if pending and choice != "none":
        tool = pending[0]
        arguments = json.dumps(tool_arguments(tool.get("parameters"), text))
        return f"call_sim{len(called)}", str(tool.get("name")), arguments
    names = {
        call.get("id"): call.get("function", {}).get("name")
        for m in since
        for call in m.get("tool_calls") or []
    }
    said = "; ".join(
        f"{names.get(m.get('tool_call_id'), 'tool')}: {message_text(m)}" for m in results
    )
    return f"Tool results: {said} [{expected_digest(messages)}]"


def plan_reply(
    body: dict[str, Any], config: SimConfig
) -> tuple[tuple[str, str, str] | None, list[str]]:
    """The sim's answer to an OpenAI-shaped chat request, whichever API it came in through:
    a tool call ``(call id, name, arguments JSON)`` and no tokens, or None and the reply's
    tokens. Agents' requests get ``tool_turn``'s step, forced calls and JSON-schema requests
    ``structured_reply``'s JSON, the rest ``reply_text`` padded to ``config.tokens``."""
    turn = tool_turn(body)
    if isinstance(turn, tuple):
        return turn, []
    if isinstance(turn, str):
        return None, _TOKEN_RE.findall(turn)
    structured = structured_reply(body)
    if structured is None:
        return None, reply_tokens(body["messages"], config.tokens)
    if structured[0] is None:
        return None, [structured[1]]  # JSON content: one token, so it is never padded
    return ("call_sim0", structured[0], structured[1]), []


def reply_tokens(messages: list[dict[str, Any]], min_tokens: int = 0) -> list[str]:
    """The reply split into streamed tokens, padded with " ~" up to `min_tokens`."""
    # Whitespace travels with the following word so the tokens concatenate to the exact reply.
    tokens: list[str] = _TOKEN_RE.findall(reply_text(messages))
    tokens.extend([PAD_TOKEN] * (min_tokens - len(tokens)))
    return tokens


def usage_for(messages: list[dict[str, Any]], completion_tokens: int) -> dict[str, int]:
    """OpenAI-style usage: about four characters a prompt token, at least one a message."""
    prompt_tokens = sum(max(1, len(message_text(m)) // 4) for m in messages)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


# --- runtime state ---------------------------------------------------------------------------

_COERCE: dict[str, Callable[[Any], Any]] = {
    "ttft_s": float,
    "token_s": float,
    "tokens": int,
    "error_rate": float,
    "error_status": lambda value: tuple(int(v) for v in value),
    "hang_rate": float,
    "seed": int,
    "record": int,
}


def _validated(config: SimConfig) -> SimConfig:
    if config.ttft_s < 0 or config.token_s < 0 or config.tokens < 0:
        raise ValueError("ttft_s, token_s and tokens must be >= 0")
    if not (0 <= config.error_rate <= 1 and 0 <= config.hang_rate <= 1):
        raise ValueError("error_rate and hang_rate must be within [0, 1]")
    if not config.error_status or config.record < 1:
        raise ValueError("error_status must not be empty and record must be >= 1")
    return config


class SimState:
    """The live config, the fault dice and the recorded requests of one app."""

    def __init__(self, config: SimConfig) -> None:
        self.config = _validated(dataclasses.replace(config))
        self.rng = random.Random(config.seed)
        self.requests: deque[Any] = deque(maxlen=config.record)
        self.searches: deque[Any] = deque(maxlen=config.record)  # POST /search bodies
        # Per request, in the order of ``requests``: API, path, headers and body.
        self.calls: deque[dict[str, Any]] = deque(maxlen=config.record)
        # Per streamed reply: when each token left (wall clock), for latency measurements.
        self.streams: deque[dict[str, Any]] = deque(maxlen=config.record)
        self.in_flight = 0  # completions being answered now
        self.max_in_flight = 0  # high-water mark since the last reset (DELETE /_sim/stats)
        self.completions = 0

    def enter(self) -> None:
        """Count a completion request that started being answered."""
        self.in_flight += 1
        self.completions += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1

    def update(self, changes: dict[str, Any]) -> SimConfig:
        """Apply a subset of SimConfig fields; raises ValueError on unknown or bad values."""
        unknown = set(changes) - set(_COERCE)
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        try:
            coerced = {name: _COERCE[name](value) for name, value in changes.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad config value: {exc}") from exc
        self.config = _validated(dataclasses.replace(self.config, **coerced))
        if "seed" in changes:
            self.rng = random.Random(self.config.seed)
        if self.config.record != self.requests.maxlen:
            self.requests = deque(self.requests, maxlen=self.config.record)
            self.calls = deque(self.calls, maxlen=self.config.record)
            self.streams = deque(self.streams, maxlen=self.config.record)
        return self.config

    def log_stream(self, stream_id: str, messages: list[dict[str, Any]]) -> list[float]:
        """Start the record of one streamed reply; its tokens' send times go in the list."""
        emitted: list[float] = []
        self.streams.append({"id": stream_id, "user": last_user_text(messages), "emitted": emitted})
        return emitted

    def record(self, request: Request, api: str, body: dict[str, Any]) -> None:
        """Keep a request: its body in ``requests``, with API, path and headers in ``calls``."""
        self.requests.append(body)
        self.calls.append(
            {"api": api, "path": request.url.path, "headers": dict(request.headers), "body": body}
        )

    def draw_fault(self) -> tuple[int | None, bool]:
        """Roll for this request: (error status or None, whether to hang)."""
        config = self.config
        status = None
        if self.rng.random() < config.error_rate:
            status = self.rng.choice(config.error_status)
        hang = self.rng.random() < config.hang_rate
        return status, hang


# --- responses -----------------------------------------------------------------------------


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An OpenAI-style error body."""
    kind = _ERROR_TYPES.get(status, "server_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


def _openai_error(status: int, message: str) -> Response:
    # Retry-After lets clients that honour it (openai, langchain) back off as with real OpenAI.
    headers = {"Retry-After": "1"} if status == 429 else None
    return error_response(status, message, headers)


def _injected_error(status: int) -> Response:
    return _openai_error(status, f"llm-sim injected error {status}")


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    """A stream of server-sent events that no cache or proxy buffer holds back."""
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


class _Chunks:
    """Serialises chat.completion.chunk events; per-token work is one small json.dumps."""

    def __init__(self, completion_id: str, model: str) -> None:
        head = json.dumps(
            {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time())}
        )[:-1]
        self._head = f'data: {head}, "model": {json.dumps(model)}, "system_fingerprint": null, '
        self._content_head = self._head + '"choices": [{"index": 0, "delta": {"content": '
        self._content_tail = '}, "logprobs": null, "finish_reason": null}]}\n\n'

    def choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return f"{self._head}{json.dumps({'choices': [choice]})[1:]}\n\n"

    def content(self, token: str) -> str:
        return f"{self._content_head}{json.dumps(token)}{self._content_tail}"

    def usage(self, usage: dict[str, int]) -> str:
        return f"{self._head}{json.dumps({'choices': [], 'usage': usage})[1:]}\n\n"


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))


async def paced(
    tokens: list[str], config: SimConfig, emitted: list[float]
) -> AsyncIterator[tuple[int, str]]:
    """Each token (with its index) at its time: the first after ``ttft_s``, then one every
    ``token_s``; when each went out is noted in ``emitted`` (``SimState.log_stream``)."""
    start = asyncio.get_running_loop().time()
    for index, token in enumerate(tokens):
        # Deadlines counted from the start, so event-loop lag under load does not accumulate.
        await _sleep_until(start + config.ttft_s + index * config.token_s)
        emitted.append(time.time())
        yield index, token


async def wait_whole_reply(config: SimConfig, tokens: list[str]) -> None:
    """A reply sent whole comes when its last token would have been streamed."""
    await asyncio.sleep(max(0.0, config.ttft_s + config.token_s * (len(tokens) - 1)))


async def _stream(
    chunks: _Chunks,
    tokens: list[str],
    config: SimConfig,
    usage: dict[str, int] | None,
    emitted: list[float],
) -> AsyncIterator[str]:
    yield chunks.choice({"role": "assistant", "content": ""})
    async for _, token in paced(tokens, config, emitted):
        yield chunks.content(token)
    yield chunks.choice({}, finish_reason="stop")
    if usage is not None:
        yield chunks.usage(usage)
    yield "data: [DONE]\n\n"


def _tool_call(
    name: str, arguments: str, index: int | None = None, call_id: str = "call_sim0"
) -> dict[str, Any]:
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    return call if index is None else {"index": index, **call}


def _completion(
    completion_id: str,
    model: str,
    text: str,
    usage: dict[str, int],
    tool: tuple[str, str] | None = None,
    call_id: str = "call_sim0",
) -> Response:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    finish_reason = "stop"
    if tool is not None:
        message.update(content=None, tool_calls=[_tool_call(*tool, call_id=call_id)])
        finish_reason = "tool_calls"
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [choice],
        "usage": usage,
    }
    return JSONResponse(body)


async def _stream_tool_call(
    chunks: _Chunks,
    tool: tuple[str, str],
    config: SimConfig,
    usage: dict[str, int] | None,
    call_id: str = "call_sim0",
) -> AsyncIterator[str]:
    # The whole call in one delta: clients join argument fragments, one is a valid split.
    yield chunks.choice({"role": "assistant", "content": None})
    await asyncio.sleep(config.ttft_s)
    yield chunks.choice({"tool_calls": [_tool_call(*tool, index=0, call_id=call_id)]})
    yield chunks.choice({}, finish_reason="tool_calls")
    if usage is not None:
        yield chunks.usage(usage)
    yield "data: [DONE]\n\n"


async def _hang(request: Request) -> None:
    # A hung backend that still notices the client giving up: otherwise each hang leaves an
    # hour-long task behind, and uvicorn waits for those on shutdown.
    async def until_disconnect() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(until_disconnect(), HANG_S)
    except TimeoutError:
        pass


async def _read_chat_request(request: Request) -> dict[str, Any] | Response:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return error_response(400, "request body is not valid JSON")
    if not isinstance(body, dict):
        return error_response(400, "request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return error_response(400, "'messages' must be a non-empty list")
    if not all(isinstance(m, dict) for m in messages):
        return error_response(400, "each message must be an object")
    return body


# --- endpoints -----------------------------------------------------------------------------


async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions, streaming or not, with the configured latency and faults."""
    body = await _read_chat_request(request)
    if isinstance(body, Response):
        return body
    return await answer_chat(
        request, "openai", body, _openai_error, lambda sim, config: _answer(sim, body, config)
    )


async def answer_chat(
    request: Request,
    api: str,
    body: dict[str, Any],
    error: Callable[[int, str], Response],
    answer: Callable[[SimState, SimConfig], Awaitable[Response]],
) -> Response:
    """A chat request of any API, recorded; answered by ``answer``, or failed with ``error``
    (its API's error body) when the dice inject a fault or a hang; counted in flight
    (``SimState.enter``) until its last byte went out."""
    sim: SimState = request.app.state.sim
    config = sim.config  # one snapshot, so a config change never alters a reply under way
    status, hang = sim.draw_fault()
    sim.record(request, api, body)
    if status is not None:
        return error(status, f"llm-sim injected error {status}")
    sim.enter()
    try:
        if hang:
            await _hang(request)
            response = error(504, "llm-sim hung past its limit")
        else:
            response = await answer(sim, config)
    except BaseException:
        sim.leave()
        raise
    if isinstance(response, StreamingResponse):
        # A stream is in flight until its last chunk went out. An async task, so the count
        # drops on the loop right after that chunk: a plain function would go through the
        # thread pool and land after the client's next request (/_sim/stats read 1 in flight).
        async def leave() -> None:
            sim.leave()

        response.background = BackgroundTask(leave)
    else:
        sim.leave()
    return response


async def _answer(sim: SimState, body: dict[str, Any], config: SimConfig) -> Response:
    messages = body["messages"]
    call, tokens = plan_reply(body, config)
    tool: tuple[str, str] | None = None
    call_id = "call_sim0"
    if call is not None:
        call_id, tool = call[0], (call[1], call[2])
    usage = usage_for(messages, max(1, len(tokens)))
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    model = str(body.get("model") or DEFAULT_MODEL)
    if body.get("stream"):
        options = body.get("stream_options") or {}
        stream_usage = usage if options.get("include_usage") else None
        chunks = _Chunks(completion_id, model)
        if tool:
            events = _stream_tool_call(chunks, tool, config, stream_usage, call_id)
        else:
            emitted = sim.log_stream(completion_id, messages)
            events = _stream(chunks, tokens, config, stream_usage, emitted)
        return sse_response(events)
    await wait_whole_reply(config, tokens)
    return _completion(completion_id, model, "".join(tokens), usage, tool, call_id)


async def search(request: Request) -> Response:
    """A Tavily-style web search, deterministic: ``max_results`` results about the query."""
    try:
        body = json.loads(await request.body())
        query = str(body["query"])
        count = max(1, min(int(body.get("max_results") or 5), 20))
    except (ValueError, KeyError, TypeError):
        return error_response(400, "body must be JSON with a 'query'")
    request.app.state.sim.searches.append(body)
    slug = re.sub(r"\W+", "-", query.lower()).strip("-")[:60]
    results = [
        {
            "title": f"Result {i} for {query}",
            "url": f"https://search.example/{slug}/{i}",
            "content": f"About {query}: finding {i}.",
            "score": round(1 - i / 100, 2),
        }
        for i in range(1, count + 1)
    ]
    return JSONResponse({"query": query, "results": results})


async def get_searches(request: Request) -> Response:
    """The recorded search request bodies, oldest first."""
    return JSONResponse(list(request.app.state.sim.searches))


async def list_models(request: Request) -> Response:
    """A few model ids; completions accept any model name."""
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "llm-sim"} for m in MODELS]
    return JSONResponse({"object": "list", "data": data})


async def get_requests(request: Request) -> Response:
    """The recorded completion request bodies, oldest first."""
    return JSONResponse(list(request.app.state.sim.requests))


async def get_calls(request: Request) -> Response:
    """The recorded requests with their API, path and headers, oldest first."""
    return JSONResponse(list(request.app.state.sim.calls))


async def clear_requests(request: Request) -> Response:
    """Forget the recorded requests and streams."""
    request.app.state.sim.requests.clear()
    request.app.state.sim.searches.clear()
    request.app.state.sim.calls.clear()
    request.app.state.sim.streams.clear()
    return Response(status_code=204)


async def get_streams(request: Request) -> Response:
    """Streamed replies, oldest first: id, last user message, wall time each token was sent."""
    return JSONResponse(list(request.app.state.sim.streams))


async def get_config(request: Request) -> Response:
    """The live SimConfig."""
    return JSONResponse(dataclasses.asdict(request.app.state.sim.config))


async def put_config(request: Request) -> Response:
    """Change any subset of SimConfig fields; answers the new config."""
    try:
        changes = json.loads(await request.body())
        if not isinstance(changes, dict):
            raise ValueError("config must be a JSON object")
        config = request.app.state.sim.update(changes)
    except ValueError as exc:
        return error_response(400, str(exc))
    return JSONResponse(dataclasses.asdict(config))


async def get_stats(request: Request) -> Response:
    """Completions answered, in flight now, and the in-flight high-water mark."""
    sim: SimState = request.app.state.sim
    body = {
        "completions": sim.completions,
        "in_flight": sim.in_flight,
        "max_in_flight": sim.max_in_flight,
    }
    return JSONResponse(body)


async def reset_stats(request: Request) -> Response:
    """Reset the counters; the high-water mark restarts from what is in flight now."""
    sim: SimState = request.app.state.sim
    sim.completions = 0
    sim.max_in_flight = sim.in_flight
    return Response(status_code=204)


# --- embeddings ----------------------------------------------------------------------------

EMBEDDING_DIMENSIONS = 256
_WORD_RE = re.compile(r"[a-z0-9]+")


def embedding_vector(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A hashed bag of words, L2-normalised: texts sharing words are near (cosine).

    Model-independent, so a collection embedded once stays searchable whatever model name
    a flow gives; each word lands on one coordinate with a sign, both from its hash.
    """
    vector = [0.0] * dimensions
    for word in _WORD_RE.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = sum(v * v for v in vector) ** 0.5
    if norm == 0.0:  # no words: a fixed unit vector, so every text has a direction
        vector[0], norm = 1.0, 1.0
    return [v / norm for v in vector]


def _embedding_input(value: Any) -> list[str] | None:
    # OpenAI's API takes a string, strings, or token ids (a list of ints, or lists of them).
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [" ".join(f"t{v}" for v in value)]
    if isinstance(value, list) and all(isinstance(v, str | list) for v in value):
        texts: list[str] = []
        for item in value:
            one = _embedding_input(item)
            if one is None:
                return None
            texts.extend(one)
        return texts
    return None


async def embeddings(request: Request) -> Response:
    """OpenAI embeddings: deterministic vectors (``embedding_vector``), float or base64."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return error_response(400, "request body is not valid JSON")
    texts = _embedding_input(body.get("input")) if isinstance(body, dict) else None
    if not texts:
        return error_response(400, "'input' must be a string or a non-empty list of strings")
    sim: SimState = request.app.state.sim
    status, _ = sim.draw_fault()
    request.app.state.sim_embeddings.append(body)
    if status is not None:
        return _injected_error(status)
    dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
    if not isinstance(dimensions, int) or not 1 <= dimensions <= 4096:
        return error_response(400, "'dimensions' must be an integer from 1 to 4096")
    base64_wanted = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = embedding_vector(text, dimensions)
        encoded: Any = vector
        if base64_wanted:
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(len(_TOKEN_RE.findall(t)) for t in texts)
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": str(body.get("model") or DEFAULT_MODEL),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def get_embedding_requests(request: Request) -> Response:
    """The recorded embeddings request bodies, oldest first (kept apart from completions)."""
    return JSONResponse(list(request.app.state.sim_embeddings))


async def clear_embedding_requests(request: Request) -> Response:
    """Forget the recorded embeddings requests."""
    request.app.state.sim_embeddings.clear()
    return Response(status_code=204)


async def healthz(request: Request) -> Response:
    """Liveness."""
    return JSONResponse({"status": "ok"})


def create_app(config: SimConfig) -> Starlette:
    """The simulator as an ASGI app; `config` is copied, change it through PUT /_sim/config."""
    # The Anthropic and Gemini routes build on this module's helpers.
    from flowfleet.llm_sim_wire import anthropic_messages_endpoint, gemini_endpoint

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/search", search, methods=["POST"]),
            Route("/_sim/searches", get_searches, methods=["GET"]),
            Route("/v1/messages", anthropic_messages_endpoint, methods=["POST"]),
            # google-genai sends v1beta by default, v1 when given a base URL.
            Route("/v1beta/models/{target}", gemini_endpoint, methods=["POST"]),
            Route("/v1/models/{target}", gemini_endpoint, methods=["POST"]),
            Route("/_sim/requests", get_requests, methods=["GET"]),
            Route("/_sim/calls", get_calls, methods=["GET"]),
            Route("/_sim/requests", clear_requests, methods=["DELETE"]),
            Route("/_sim/streams", get_streams, methods=["GET"]),
            Route("/_sim/config", get_config, methods=["GET"]),
            Route("/_sim/config", put_config, methods=["PUT"]),
            Route("/_sim/stats", get_stats, methods=["GET"]),
            Route("/_sim/stats", reset_stats, methods=["DELETE"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/_sim/embeddings", get_embedding_requests, methods=["GET"]),
            Route("/_sim/embeddings", clear_embedding_requests, methods=["DELETE"]),
        ]
    )
    app.state.sim = SimState(config)
    app.state.sim_embeddings = deque(maxlen=config.record)
    return app


def serve(host: str, port: int, config: SimConfig) -> None:
    """Run the simulator with uvicorn until interrupted."""
    # Access logs would cost more CPU than the simulated work at hundreds of requests a second;
    # the short graceful timeout keeps clients stuck on a hung request from delaying shutdown.
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )


def _parse_args(argv: list[str] | None = None) -> tuple[str, int, SimConfig]:
    parser = argparse.ArgumentParser(prog="llm-sim", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to the first token")
    parser.add_argument("--token-time", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--tokens", type=int, default=0, help="pad replies to this many tokens")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--error-status", default="429,500", help="comma-separated statuses")
    parser.add_argument("--hang-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", type=int, default=1000, help="request bodies kept")
    args = parser.parse_args(argv)
    config = SimConfig(
        ttft_s=args.ttft,
        token_s=args.token_time,
        tokens=args.tokens,
        error_rate=args.error_rate,
        error_status=tuple(int(s) for s in args.error_status.split(",") if s.strip()),
        hang_rate=args.hang_rate,
        seed=args.seed,
        record=args.record,
    )
    return args.host, args.port, _validated(config)


if __name__ == "__main__":
    serve(*_parse_args())
