"""llm-sim's Anthropic Messages and Gemini routes: the OpenAI route's replies in their wire formats.

Each request is read as the OpenAI chat request it amounts to (``anthropic_chat_body``,
``gemini_chat_body``: system first, then user, assistant and tool turns; tools and tool
choice), and answered by ``plan_reply``, the OpenAI route's own logic: the same reply text,
the same agent steps (``tool_turn``) and the same forced calls in every API. Latency,
padding, faults and hangs follow the live ``SimConfig`` as on the OpenAI route.

- Anthropic (``POST /v1/messages``): ``system`` (string or text blocks) and ``messages``
  (``tool_use`` / ``tool_result`` blocks for tool calls and their results); a reply is one
  ``text`` block, or one ``tool_use`` block (``stop_reason: tool_use``) for a tool call,
  streamed as ``message_start``, ``content_block_start``/``_delta``/``_stop``,
  ``message_delta`` (stop reason, output tokens) and ``message_stop`` events.
- Gemini (``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent``,
  ``?alt=sse`` for server-sent events, else one JSON array): ``systemInstruction`` and
  ``contents`` (role ``model`` is the assistant; ``functionCall`` / ``functionResponse``
  parts for tool calls and their results); a reply is one candidate whose parts hold the
  text, or one ``functionCall`` for a tool call, with ``usageMetadata``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from flowfleet.llm_sim import (
    SimConfig,
    SimState,
    answer_chat,
    message_text,
    paced,
    plan_reply,
    sse_response,
    usage_for,
    wait_whole_reply,
)


def _blocks_text(content: Any) -> str:
    # Anthropic content: a string or blocks; Gemini parts: [{"text": ...}]. Text parts only.
    return message_text({"content": content})


def anthropic_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAI-style messages an Anthropic Messages request amounts to.

    ``tool_use`` blocks become the assistant message's ``tool_calls``; ``tool_result``
    blocks (sent in a user turn) become ``tool`` messages, before any text of that turn.
    """
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _blocks_text(system)})
    for m in body.get("messages") or []:
        role, content = m.get("role", ""), m.get("content")
        if not isinstance(content, list):
            messages.append({"role": role, "content": _blocks_text(content)})
            continue
        blocks = [b for b in content if isinstance(b, dict)]
        kinds = ("tool_use", "tool_result")
        text = _blocks_text([b for b in blocks if b.get("type") not in kinds])
        results = [b for b in blocks if b.get("type") == "tool_result"]
        uses = [b for b in blocks if b.get("type") == "tool_use"]
        for result in results:
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": result.get("tool_use_id"),
                    "content": _blocks_text(result.get("content")),
                }
            )
        if uses:
            calls = [_openai_call(b.get("id"), b.get("name"), b.get("input")) for b in uses]
            messages.append({"role": "assistant", "content": text, "tool_calls": calls})
        elif text or not results:
            messages.append({"role": role, "content": text})
    return messages


def anthropic_chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request as the OpenAI chat request it amounts to: messages,
    ``tools`` (``input_schema`` as parameters) and ``tool_choice`` (``tool`` forces that
    function, ``any`` is ``required``, ``none`` is ``none``, ``auto`` or none is unset)."""
    tools = [
        _openai_tool(t.get("name"), t.get("description"), t.get("input_schema"))
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("name")
    ]
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    chat: dict[str, Any] = {"model": body.get("model"), "messages": anthropic_messages(body)}
    if tools:
        chat["tools"] = tools
    if kind == "tool" and isinstance(choice, dict):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    return chat


def gemini_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAI-style messages a Gemini generateContent request amounts to.

    ``functionCall`` parts become the assistant message's ``tool_calls`` (with the call's
    ``id``, else ``gemini_call<n>``); ``functionResponse`` parts become ``tool`` messages
    answering the call with their ``id``, else the earliest open call of that name.
    """
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(system, dict) and system.get("parts"):
        messages.append({"role": "system", "content": _blocks_text(system["parts"])})
    open_calls: dict[str, list[str]] = {}  # function name -> ids of calls not yet answered
    made = 0
    for c in body.get("contents") or []:
        role = "assistant" if c.get("role") == "model" else "user"
        parts = [p for p in c.get("parts") or [] if isinstance(p, dict)]
        text = _blocks_text(parts)
        calls = [f for p in parts if (f := _part(p, "functionCall", "function_call"))]
        responses = [r for p in parts if (r := _part(p, "functionResponse", "function_response"))]
        for response in responses:
            name = str(response.get("name") or "")
            waiting = open_calls.get(name) or []
            call_id = response.get("id") or (waiting.pop(0) if waiting else name)
            if call_id in waiting:
                waiting.remove(call_id)
            content = _response_text(response.get("response"))
            messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
        if calls:
            tool_calls = []
            for fn in calls:
                call_id = fn.get("id") or f"gemini_call{made}"
                made += 1
                open_calls.setdefault(str(fn.get("name") or ""), []).append(call_id)
                tool_calls.append(_openai_call(call_id, fn.get("name"), fn.get("args")))
            messages.append({"role": "assistant", "content": text, "tool_calls": tool_calls})
        elif text or not responses:
            messages.append({"role": role, "content": text})
    return messages


def gemini_chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """A Gemini request as the OpenAI chat request it amounts to: messages, the declared
    functions as ``tools`` (Gemini's upper-case schema types read as JSON Schema's) and
    ``toolConfig``'s mode as ``tool_choice`` (``ANY`` with one allowed name forces it, else
    ``required`` among the allowed; ``NONE`` is ``none``; ``AUTO`` or none is unset)."""
    tools = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        declared = tool.get("functionDeclarations") or tool.get("function_declarations") or []
        for fn in declared:
            schema = (
                fn.get("parametersJsonSchema")
                or fn.get("parameters_json_schema")
                or _json_schema(fn.get("parameters"))
            )
            tools.append(_openai_tool(fn.get("name"), fn.get("description"), schema))
    config = body.get("toolConfig") or body.get("tool_config") or {}
    calling = config.get("functionCallingConfig") or config.get("function_calling_config") or {}
    mode = str(calling.get("mode") or "AUTO").upper()
    allowed = calling.get("allowedFunctionNames") or calling.get("allowed_function_names")
    chat: dict[str, Any] = {"model": body.get("model"), "messages": gemini_messages(body)}
    if mode in ("ANY", "VALIDATED") and allowed:
        tools = [t for t in tools if t["function"]["name"] in allowed] or tools
    if tools:
        chat["tools"] = tools
    if mode == "ANY" and len(tools) == 1 and allowed:
        chat["tool_choice"] = {"type": "function", "function": {"name": allowed[0]}}
    elif mode == "ANY":
        chat["tool_choice"] = "required"
    elif mode == "NONE":
        chat["tool_choice"] = "none"
    return chat


def _openai_tool(name: Any, description: Any, schema: Any) -> dict[str, Any]:
    function = {"name": str(name), "description": description or "", "parameters": schema or {}}
    return {"type": "function", "function": function}


def _openai_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    function = {"name": name, "arguments": json.dumps(arguments or {})}
    return {"id": call_id, "type": "function", "function": function}


def _part(part: dict[str, Any], *keys: str) -> dict[str, Any] | None:
    # google-genai sends camelCase; hand-written requests may use the proto's snake_case.
    return next((part[k] for k in keys if isinstance(part.get(k), dict)), None)


def _response_text(response: Any) -> str:
    """A functionResponse's ``response`` as the tool's text: langchain-google-genai wraps a
    non-object result as ``{"output": ...}`` and sends a JSON object result as the object."""
    if isinstance(response, dict) and set(response) == {"output"}:
        response = response["output"]
    return response if isinstance(response, str) else json.dumps(response)


def _json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-style schema (``"type": "STRING"``) with JSON Schema's type names."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "any_of", "oneOf", "allOf"):
            out["anyOf" if key == "any_of" else key] = _json_schema(value)
        else:
            out[key] = value
    return out


async def _read(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


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
    return await answer_chat(
        request,
        "anthropic",
        body,
        _anthropic_error,
        lambda sim, config: _anthropic_answer(sim, body, config),
    )


async def _anthropic_answer(sim: SimState, body: dict[str, Any], config: SimConfig) -> Response:
    chat = anthropic_chat_body(body)
    messages = chat["messages"]
    call, tokens = plan_reply(chat, config)
    tool: dict[str, Any] | None = None
    if call is not None:
        call_id, name, arguments = call
        tool_id = call_id.replace("call_", "toolu_", 1)
        tool = {"type": "tool_use", "id": tool_id, "name": name, "input": json.loads(arguments)}
    usage = usage_for(messages, max(1, len(tokens)))
    message_id = f"msg_{uuid.uuid4().hex}"
    model = str(body.get("model") or "sim-1")
    stop_reason = "tool_use" if tool else "end_turn"
    if body.get("stream"):
        emitted = sim.log_stream(message_id, messages)
        return sse_response(
            _anthropic_stream(message_id, model, tokens, tool, usage, config, emitted)
        )
    await wait_whole_reply(config, tokens)
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
        async for _, token in paced(tokens, config, emitted):
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
    stream = method == "streamGenerateContent"
    sse = request.query_params.get("alt") == "sse"
    return await answer_chat(
        request,
        "gemini",
        body,
        _gemini_error,
        lambda sim, config: _gemini_answer(sim, body, config, model, stream=stream, sse=sse),
    )


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


async def _gemini_answer(
    sim: SimState, body: dict[str, Any], config: SimConfig, model: str, *, stream: bool, sse: bool
) -> Response:
    chat = gemini_chat_body(body)
    messages = chat["messages"]
    planned, tokens = plan_reply(chat, config)
    call: dict[str, Any] | None = None
    if planned is not None:
        # The Gemini API's calls carry no id: the client matches responses by name.
        call = {"functionCall": {"name": planned[1], "args": json.loads(planned[2])}}
    usage = usage_for(messages, max(1, len(tokens)))
    if not stream:
        await wait_whole_reply(config, tokens)
        parts = [call] if call else [{"text": "".join(tokens)}]
        return JSONResponse(_gemini_chunk(parts, model, "STOP", usage))
    emitted = sim.log_stream(f"gemini-{uuid.uuid4().hex}", messages)

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        if call:
            await asyncio.sleep(config.ttft_s)
            yield _gemini_chunk([call], model, "STOP", usage)
            return
        async for index, token in paced(tokens, config, emitted):
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
        return sse_response(as_sse())
    return StreamingResponse(as_array(), media_type="application/json")
