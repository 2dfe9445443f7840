"""llm-sim's Anthropic Messages and Gemini routes: the OpenAI route's replies in their wire formats.

Each request is read as the OpenAI-style messages it amounts to (system first, then user and
assistant turns), so ``reply_text`` of those messages is the reply in every API. Latency,
padding, faults and hangs follow the live ``SimConfig`` as on the OpenAI route.

- Anthropic (``POST /v1/messages``): ``system`` (string or text blocks) and ``messages``;
  a reply is one ``text`` block (or one ``tool_use`` block when ``tools`` are offered),
  streamed as ``message_start``, ``content_block_start``/``_delta``/``_stop``,
  ``message_delta`` (stop reason, output tokens) and ``message_stop`` events.
- Gemini (``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent``,
  ``?alt=sse`` for server-sent events, else one JSON array): ``systemInstruction`` and
  ``contents`` (role ``model`` is the assistant); a reply is one candidate whose parts hold
  the text (or a ``functionCall`` when ``tools`` declare functions), with ``usageMetadata``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from flowfleet.llm_sim import (
    SimConfig,
    SimState,
    _hang,
    _sleep_until,
    message_text,
    reply_tokens,
    sample_value,
    usage_for,
)

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _blocks_text(content: Any) -> str:
    # Anthropic content: a string or blocks; Gemini parts: [{"text": ...}]. Text parts only.
    return message_text({"content": content})


def anthropic_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAI-style messages an Anthropic Messages request amounts to."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _blocks_text(system)})
    for m in body.get("messages") or []:
        messages.append({"role": m.get("role", ""), "content": _blocks_text(m.get("content"))})
    return messages


def gemini_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAI-style messages a Gemini generateContent request amounts to."""
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(system, dict) and system.get("parts"):
        messages.append({"role": "system", "content": _blocks_text(system["parts"])})
    for c in body.get("contents") or []:
        role = "assistant" if c.get("role") == "model" else c.get("role") or "user"
        messages.append({"role": role, "content": _blocks_text(c.get("parts") or [])})
    return messages


def _last_user(messages: list[dict[str, Any]]) -> str:
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


async def _read(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _admit(
    request: Request, api: str, body: dict[str, Any]
) -> tuple[SimState, SimConfig, int | None, bool]:
    sim: SimState = request.app.state.sim
    config = sim.config
    status, hang = sim.draw_fault()
    sim.record(request, api, body)
    return sim, config, status, hang


def _respond(sim: SimState, response: Response) -> Response:
    if isinstance(response, StreamingResponse):
        response.background = BackgroundTask(sim.leave)
    else:
        sim.leave()
    return response


# --- Anthropic Messages ------------------------------------------------------------------------

_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
}


def _anthropic_error(status: int, message: str) -> Response:
    kind = _ANTHROPIC_ERRORS.get(status, "api_error")
    headers = {"Retry-After": "1"} if status == 429 else None
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def anthropic_messages_endpoint(request: Request) -> Response:
    """Anthropic Messages, streaming or not, with the configured latency and faults."""
    body = await _read(request)
    if body is None or not isinstance(body.get("messages"), list) or not body["messages"]:
        return _anthropic_error(400, "body must be a JSON object with non-empty 'messages'")
    sim, config, status, hang = await _admit(request, "anthropic", body)
    if status is not None:
        return _anthropic_error(status, f"llm-sim injected error {status}")
    sim.enter()
    try:
        if hang:
            await _hang(request)
            return _respond(sim, _anthropic_error(504, "llm-sim hung past its limit"))
        response = await _anthropic_answer(sim, body, config)
    except BaseException:
        sim.leave()
        raise
    return _respond(sim, response)


async def _anthropic_answer(sim: SimState, body: dict[str, Any], config: SimConfig) -> Response:
    messages = anthropic_messages(body)
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("name")]
    tool: dict[str, Any] | None = None
    tokens: list[str] = []
    if tools:
        choice = body.get("tool_choice")
        wanted = choice.get("name") if isinstance(choice, dict) else None
        chosen = next((t for t in tools if t["name"] == wanted), tools[0])
        arguments = sample_value(chosen.get("input_schema"), _last_user(messages)) or {}
        tool = {"type": "tool_use", "id": "toolu_sim0", "name": chosen["name"], "input": arguments}
    else:
        tokens = reply_tokens(messages, config.tokens)
    usage = usage_for(messages, max(1, len(tokens)))
    message_id = f"msg_{uuid.uuid4().hex}"
    model = str(body.get("model") or "sim-1")
    stop_reason = "tool_use" if tool else "end_turn"
    if body.get("stream"):
        emitted: list[float] = []
        sim.streams.append({"id": message_id, "user": _last_user(messages), "emitted": emitted})
        events = _anthropic_stream(message_id, model, tokens, tool, usage, config, emitted)
        return StreamingResponse(events, media_type="text/event-stream", headers=_SSE_HEADERS)
    await asyncio.sleep(max(0.0, config.ttft_s + config.token_s * (len(tokens) - 1)))
    content = [tool] if tool else [{"type": "text", "text": "".join(tokens)}]
    return JSONResponse(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage["prompt_tokens"],
                "output_tokens": usage["completion_tokens"],
            },
        }
    )


async def _anthropic_stream(
    message_id: str,
    model: str,
    tokens: list[str],
    tool: dict[str, Any] | None,
    usage: dict[str, int],
    config: SimConfig,
    emitted: list[float],
) -> AsyncIterator[str]:
    start_usage = {"input_tokens": usage["prompt_tokens"], "output_tokens": 1}
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    yield _sse("message_start", {"type": "message_start", "message": message})
    if tool is not None:
        block = {**tool, "input": {}}
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        await asyncio.sleep(config.ttft_s)
        delta = {"type": "input_json_delta", "partial_json": json.dumps(tool["input"])}
        yield _sse(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )
    else:
        block = {"type": "text", "text": ""}
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for index, token in enumerate(tokens):
            await _sleep_until(begin + config.ttft_s + index * config.token_s)
            emitted.append(time.time())
            delta = {"type": "text_delta", "text": token}
            yield _sse(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    final = {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
        # As the current API does: the final usage carries both counts.
        "usage": {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
        },
    }
    yield _sse("message_delta", final)
    yield _sse("message_stop", {"type": "message_stop"})


# --- Gemini ------------------------------------------------------------------------------------

_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _gemini_error(status: int, message: str) -> Response:
    error = {"code": status, "message": message, "status": _GEMINI_STATUS.get(status, "UNKNOWN")}
    headers = {"Retry-After": "1"} if status == 429 else None
    return JSONResponse({"error": error}, status_code=status, headers=headers)


async def gemini_endpoint(request: Request) -> Response:
    """Gemini ``{model}:generateContent`` and ``{model}:streamGenerateContent``."""
    model, _, method = request.path_params["target"].partition(":")
    if method not in ("generateContent", "streamGenerateContent"):
        return _gemini_error(404, f"unknown method {method!r}")
    body = await _read(request)
    if body is None or not isinstance(body.get("contents"), list) or not body["contents"]:
        return _gemini_error(400, "body must be a JSON object with non-empty 'contents'")
    sim, config, status, hang = await _admit(request, "gemini", body)
    if status is not None:
        return _gemini_error(status, f"llm-sim injected error {status}")
    sim.enter()
    try:
        if hang:
            await _hang(request)
            return _respond(sim, _gemini_error(504, "llm-sim hung past its limit"))
        stream = method == "streamGenerateContent"
        sse = request.query_params.get("alt") == "sse"
        response = await _gemini_answer(sim, body, config, model, stream=stream, sse=sse)
    except BaseException:
        sim.leave()
        raise
    return _respond(sim, response)


def _gemini_usage(usage: dict[str, int]) -> dict[str, int]:
    return {
        "promptTokenCount": usage["prompt_tokens"],
        "candidatesTokenCount": usage["completion_tokens"],
        "totalTokenCount": usage["total_tokens"],
    }


def _gemini_chunk(
    parts: list[dict[str, Any]], model: str, finish: str | None, usage: dict[str, int] | None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
    if usage is not None:
        chunk["usageMetadata"] = _gemini_usage(usage)
    return chunk


def _gemini_function(body: dict[str, Any], text: str) -> dict[str, Any] | None:
    for tool in body.get("tools") or []:
        declared = tool.get("functionDeclarations") or tool.get("function_declarations") or []
        if declared:
            fn = declared[0]
            schema = fn.get("parameters") or fn.get("parametersJsonSchema") or {}
            return {
                "functionCall": {"name": fn.get("name"), "args": sample_value(schema, text) or {}}
            }
    return None


async def _gemini_answer(
    sim: SimState, body: dict[str, Any], config: SimConfig, model: str, *, stream: bool, sse: bool
) -> Response:
    messages = gemini_messages(body)
    call = _gemini_function(body, _last_user(messages))
    tokens = [] if call else reply_tokens(messages, config.tokens)
    usage = usage_for(messages, max(1, len(tokens)))
    if not stream:
        await asyncio.sleep(max(0.0, config.ttft_s + config.token_s * (len(tokens) - 1)))
        parts = [call] if call else [{"text": "".join(tokens)}]
        return JSONResponse(_gemini_chunk(parts, model, "STOP", usage))
    emitted: list[float] = []
    sim.streams.append(
        {"id": f"gemini-{uuid.uuid4().hex}", "user": _last_user(messages), "emitted": emitted}
    )

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        if call:
            await asyncio.sleep(config.ttft_s)
            yield _gemini_chunk([call], model, "STOP", usage)
            return
        begin = asyncio.get_running_loop().time()
        for index, token in enumerate(tokens):
            await _sleep_until(begin + config.ttft_s + index * config.token_s)
            emitted.append(time.time())
            last = index == len(tokens) - 1
            yield _gemini_chunk(
                [{"text": token}], model, "STOP" if last else None, usage if last else None
            )

    async def as_sse() -> AsyncIterator[str]:
        async for chunk in chunks():
            yield f"data: {json.dumps(chunk)}\r\n\r\n"

    async def as_array() -> AsyncIterator[str]:
        first = True
        async for chunk in chunks():
            yield ("[" if first else ",") + json.dumps(chunk)
            first = False
        yield "[]" if first else "]"

    if sse:
        return StreamingResponse(as_sse(), media_type="text/event-stream", headers=_SSE_HEADERS)
    return StreamingResponse(as_array(), media_type="application/json")
