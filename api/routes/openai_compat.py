"""OpenAI-compatible front door: ``model`` names a flow, each completion is a run.

The last user message is the run's input; the conversation lives server-side in the
session named by ``user`` (or the ``X-Session-Id`` header), so clients send only the
new turn. Without ``stream`` the call waits for the run (as ``/wait`` does); with it,
the run's token events become ``chat.completion.chunk`` SSE lines.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.auth import RUNS_READ, RUNS_WRITE, Caller, requires
from api.services import events as event_service
from api.services import flows as flow_service
from api.services import submit as submit_service
from api.services.events import SSE_HEADERS
from api.state import Db, State
from shared.errors import FlowfleetError, FlowNotFound, InvalidRequest
from shared.models import Run
from shared.run_status import RunStatus
from shared.schemas import RunCreate

router = APIRouter(prefix="/v1", tags=["openai"])


class ChatRequest(BaseModel):
    """The fields of an OpenAI chat completion request that flowfleet uses; others are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = None


def openai_error(
    status: int,
    message: str,
    code: str,
    kind: str | None = None,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in OpenAI's shape, which OpenAI clients parse and raise."""
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _text(message: dict[str, Any], where: str) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    content = message.get("content")
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or "text" not in part:
                continue  # images and other parts carry no text for the flow
            if not isinstance(part["text"], str):
                raise InvalidRequest(
                    "a text content part's text must be a string",
                    field=f"{where}.content[{j}].text",
                )
            texts.append(part["text"])
        return "".join(texts)
    return "" if content is None else str(content)


def run_request(chat: ChatRequest, session_header: str | None) -> RunCreate:
    """The run a chat completion asks for: the last user turn, in the session named by
    ``X-Session-Id`` or ``user``."""
    turns = [(i, m) for i, m in enumerate(chat.messages) if m.get("role") == "user"]
    if not turns:
        raise InvalidRequest("messages must contain a user message", field="messages")
    i, last = turns[-1]
    where = f"messages[{i}]"
    fields = {
        "input": f"{where}.content",
        "session_id": "X-Session-Id" if session_header else "user",
    }
    try:
        return RunCreate(input=_text(last, where), session_id=session_header or chat.user)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = fields.get(str(err.get("loc", ("input",))[0]), "messages")
        raise InvalidRequest(f"{field}: {err.get('msg', 'invalid')}", field=field) from exc


def _usage(run: Run) -> dict[str, int]:
    usage = run.usage or {}
    prompt, completion = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _chunk(run: Run, created: int, delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return json.dumps(
        {
            "id": f"chatcmpl-{run.id}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": run.flow_id,
            "choices": [choice],
        }
    )


def _failure(run: Run) -> JSONResponse:
    if run.status == RunStatus.CANCELLED:
        return openai_error(409, f"run {run.id} was cancelled", "run_cancelled")
    code = run.error_code or "run_failed"
    return openai_error(502, run.error_message or "the run failed", code)


@router.post("/chat/completions", dependencies=[requires(RUNS_WRITE)], response_model=None)
async def chat_completions(
    request: Request,
    state: State,
    caller: Caller,
    x_session_id: Annotated[str | None, Header(alias="X-Session-Id")] = None,
) -> Response:
    """Run the flow named by ``model`` on the last user message; OpenAI's response shape."""
    if not _is_json(request.headers.get("content-type")):
        # A web page can POST text/plain across origins without a preflight; JSON it cannot.
        return openai_error(
            415,
            "send the request as JSON (Content-Type: application/json)",
            "unsupported_media_type",
        )
    try:
        chat = ChatRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        return openai_error(400, str(exc).splitlines()[0] + ": " + _first_error(exc), "invalid")
    try:
        who = submit_service.submitter(
            state.settings, caller, request.client.host if request.client else None
        )
        body = run_request(chat, x_session_id)
        run = (await submit_service.submit(state, who, flow_id=chat.model, body=body)).run
    except FlowNotFound:
        return openai_error(404, f"no flow named {chat.model!r}", "model_not_found", param="model")
    except FlowfleetError as exc:
        field = exc.extra.get("field")
        return openai_error(
            exc.status,
            exc.message,
            exc.code,
            param=None if field is None else str(field),
            headers=exc.headers(),
        )
    headers = {"X-Flowfleet-Run-Id": run.id}
    if chat.stream:
        include_usage = bool((chat.stream_options or {}).get("include_usage"))
        stream = _stream(state, run, include_usage, caller.visible_owner)
        return EventSourceResponse(
            stream, headers={**SSE_HEADERS, **headers}, ping=state.settings.sse_ping_s, sep="\n"
        )
    run, finished = await event_service.wait_for(
        state, run, state.settings.wait_max_s, caller.visible_owner
    )
    if not finished:
        return openai_error(504, f"run {run.id} did not finish in time; it goes on", "timeout")
    if run.status != RunStatus.SUCCEEDED:
        return _failure(run)
    text = (run.output or {}).get("text") or ""
    message = {"role": "assistant", "content": text, "refusal": None}
    completion = {
        "id": f"chatcmpl-{run.id}",
        "object": "chat.completion",
        "created": int(run.created_at.timestamp()),
        "model": run.flow_id,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(run),
    }
    return JSONResponse(completion, headers=headers)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"


async def _stream(
    state: State, run: Run, include_usage: bool, owner: str | None
) -> AsyncIterator[ServerSentEvent]:
    created = int(run.created_at.timestamp())
    yield ServerSentEvent(data=_chunk(run, created, {"role": "assistant", "content": ""}))
    streamed = False
    async for _, event, data in event_service.follow(state, run, owner=owner):
        if event == "token":
            streamed = True
            yield ServerSentEvent(data=_chunk(run, created, {"content": data.get("text", "")}))
        elif event == "output" and not streamed and data.get("text"):
            # A flow whose model does not stream still answers, in one chunk.
            yield ServerSentEvent(data=_chunk(run, created, {"content": data["text"]}))
        elif event == "error":
            error = {"message": data.get("message", "the run failed"), "type": "server_error"}
            yield ServerSentEvent(data=json.dumps({"error": {**error, "code": data.get("code")}}))
        elif event == "done":
            if data.get("status") == RunStatus.SUCCEEDED:
                yield ServerSentEvent(data=_chunk(run, created, {}, "stop"))
                if include_usage:
                    final = await event_service.load_run(state, run.id, owner)
                    usage = {**json.loads(_chunk(final, created, {})), "choices": []}
                    usage["usage"] = _usage(final)
                    yield ServerSentEvent(data=json.dumps(usage))
            elif data.get("status") == RunStatus.CANCELLED:
                cancelled = {"message": f"run {run.id} was cancelled", "type": "server_error"}
                yield ServerSentEvent(
                    data=json.dumps({"error": {**cancelled, "code": "cancelled"}})
                )
    yield ServerSentEvent(data="[DONE]")


@router.get("/models", dependencies=[requires(RUNS_READ)])
async def list_models(db: Db, caller: Caller) -> dict[str, Any]:
    """Every flow, as an OpenAI model whose id is the flow id."""
    flows = await flow_service.list_flows(db, owner=caller.visible_owner)
    data = [
        {
            "id": f.id,
            "object": "model",
            "created": int(f.created_at.timestamp()),
            "owned_by": "flowfleet",
            "name": f.name,
        }
        for f in flows
    ]
    return {"object": "list", "data": data}
