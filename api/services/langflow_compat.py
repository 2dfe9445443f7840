"""LangFlow's API shapes over flowfleet runs: requests in, responses and stream lines out.

Only translation lives here; the rules a run must pass live in ``api.services.submit``.
Shapes follow LangFlow's ``/api/v1/run`` (``SimplifiedAPIRequest``, ``RunResponse`` of
``RunOutputs`` of ``ResultData``) and its stream (one JSON object per event, each followed
by a blank line, served as ``text/event-stream``), as LangFlow's own clients parse them.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.services import events as event_service
from api.services import flows as flow_service
from api.services import runs as run_service
from api.state import AppState
from shared.errors import FlowNotFound, InvalidRequest, RunFailure
from shared.models import Flow, Run
from shared.queue import WEBHOOK_TASK
from shared.schemas import RunCreate

# LangFlow's clients type a flow's id as a UUID (langflow-sdk's ``Flow.id: UUID``); a
# flowfleet id is a slug, so each flow is listed under a stable UUID derived from it.
_FLOW_NAMESPACE = uuid.UUID("6f1a0c51-6c2e-4d55-9a3e-0f1f7e3b9a42")


class SimplifiedRequest(BaseModel):
    """LangFlow's ``SimplifiedAPIRequest`` (plus ``stream``, which langflow-sdk sends in the
    body); other fields are ignored, as LangFlow ignores them."""

    model_config = ConfigDict(extra="ignore")

    input_value: str | None = None
    input_type: str = "chat"
    output_type: str = "chat"
    output_component: str | None = ""
    tweaks: dict[str, Any] | None = None
    session_id: str | None = None
    stream: bool = False


def flow_uuid(flow_id: str) -> str:
    """The UUID a flow is listed under in LangFlow's shapes (stable across replicas)."""
    return str(uuid.uuid5(_FLOW_NAMESPACE, flow_id))


async def resolve_flow_id(db: AsyncSession, name: str, *, owner: str | None) -> str:
    """The flowfleet id that ``/run/{flow_id_or_name}`` names: a flow id (the registry keeps
    no LangFlow ``endpoint_name``, so the id is the endpoint name), or the UUID a flow is
    listed under. Unknown names are left to ``submit`` to refuse, in its words."""
    try:
        wanted = str(uuid.UUID(name))
    except ValueError:
        return name
    for flow in await flow_service.list_flows(db, owner=owner):
        if flow_uuid(flow.id) == wanted:
            return flow.id
    return name


_streamers: dict[tuple[str, str], list[str]] = {}  # (flow, version): components with `stream`


async def stream_tweaks(
    db: AsyncSession, flow_id: str, *, owner: str | None
) -> dict[str, dict[str, Any]]:
    """The tweaks LangFlow applies to a streamed run: ``stream`` on for every component that
    has the field (its ``process_tweaks`` adds ``{"stream": true}`` for all nodes), so an
    export saved with streaming off still streams tokens when the caller asks for them."""
    try:
        ref = await flow_service.flow_for_submit(db, flow_id, owner=owner)
    except FlowNotFound:
        return {}  # submit refuses it, in its words
    if ref.kind != "langflow":
        return {}
    key = (ref.id, ref.current_version)
    ids = _streamers.get(key)
    if ids is None:
        from flows.langflow.document import parse_document

        version = await flow_service.get_version(db, ref.id, ref.current_version)
        doc = parse_document(version.source)
        ids = [nid for nid, node in doc.nodes.items() if "stream" in node.template]
        if len(_streamers) > 64:  # versions are immutable; bounded all the same
            _streamers.clear()
        _streamers[key] = ids
    return {nid: {"stream": True} for nid in ids}


def parse_request(raw: bytes) -> SimplifiedRequest:
    """The request body (empty means every default, as in LangFlow)."""
    if not raw.strip():
        return SimplifiedRequest()
    try:
        return SimplifiedRequest.model_validate_json(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "body"
        raise InvalidRequest(f"{field}: {err.get('msg', 'invalid')}", field=field) from exc


def run_request(
    req: SimplifiedRequest, flow_id: str, streaming: dict[str, dict[str, Any]] | None = None
) -> RunCreate:
    """The run a LangFlow request asks for.

    As in LangFlow, a request without ``session_id`` runs in the session named by the flow
    id (so sessionless calls of a memory flow share one history, per key). Tweaks keyed by
    a component take effect; LangFlow's bare ``{"field": value}`` tweaks (for every
    component) have no flowfleet equivalent and are refused rather than dropped.
    """
    tweaks = dict(req.tweaks or {})
    tweaks.pop("stream", None)  # LangFlow's own streaming switch, set by ?stream
    bare = sorted(k for k, v in tweaks.items() if not isinstance(v, dict))
    if bare:
        raise InvalidRequest(
            f"tweaks {bare} are not keyed by a component; send "
            '{"<component id>": {"<field>": value}}',
            field="tweaks",
        )
    for component, fields in (streaming or {}).items():
        tweaks[component] = {**fields, **tweaks.get(component, {})}  # the caller's win
    session = req.session_id or flow_id
    try:
        return RunCreate(input=req.input_value, session_id=session, tweaks=tweaks)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err.get("loc", ("input",))[0])
        field = {"input": "input_value"}.get(name, name)
        raise InvalidRequest(f"{field}: {err.get('msg', 'invalid')}", field=field) from exc


def _stamp(when: datetime | None) -> str:
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def message(
    run: Run, text: str, *, machine: bool, component_id: str | None = None
) -> dict[str, Any]:
    """A LangFlow ``Message`` as its API dumps it (``message.text`` is what clients read)."""
    sender, name = ("Machine", "AI") if machine else ("User", "User")
    properties = {
        "text_color": "",
        "background_color": "",
        "edited": False,
        "source": {"id": component_id, "display_name": None, "source": None},
        "icon": "",
        "allow_markdown": False,
        "positive_feedback": None,
        "state": "complete",
        "targets": [],
    }
    data = {
        "timestamp": _stamp(run.finished_at if machine else run.created_at),
        "sender": sender,
        "sender_name": name,
        "session_id": run.session_id or "",
        "text": text,
        "files": [],
        "error": False,
        "edit": False,
        "properties": properties,
        "category": "message",
        "content_blocks": [],
        "id": str(uuid.uuid5(_FLOW_NAMESPACE, f"{run.id}:{sender}:{component_id}")),
        "flow_id": flow_uuid(run.flow_id),
    }
    return data


def _result_data(run: Run, component_id: str | None, text: str) -> dict[str, Any]:
    """One output component's ``ResultData``."""
    msg = message(run, text, machine=True, component_id=component_id)
    return {
        "results": {"message": {"text_key": "text", "data": msg, "default_value": "", **msg}},
        "artifacts": {
            "message": text,
            "sender": "Machine",
            "sender_name": "AI",
            "files": [],
            "type": "object",
        },
        "outputs": {"message": {"message": text, "type": "text"}},
        "logs": {"message": []},
        "messages": [
            {
                "message": text,
                "sender": "Machine",
                "sender_name": "AI",
                "session_id": run.session_id or "",
                "stream_url": None,
                "component_id": component_id,
                "files": [],
                "type": "text",
            }
        ],
        "timedelta": None,
        "duration": None,
        "component_display_name": _display_name(component_id),
        "component_id": component_id,
        "used_frozen_result": False,
    }


def _display_name(component_id: str | None) -> str:
    kind = (component_id or "").split("-", 1)[0]
    return {"ChatOutput": "Chat Output", "TextOutput": "Text Output"}.get(kind, kind or "Output")


def selected_outputs(run: Run, req: SimplifiedRequest) -> list[tuple[str | None, str]]:
    """The (component id, text) pairs the request's ``output_type``/``output_component``
    select, as LangFlow selects output vertices: ``output_component`` by id, else outputs
    whose id contains ``output_type`` ("chat", "text"), or every output for "any"/"debug"."""
    output = run.output or {}
    produced = {
        str(k): "" if v is None else str(v) for k, v in (output.get("outputs") or {}).items()
    }
    if req.output_component:
        return [(c, t) for c, t in produced.items() if c == req.output_component]
    if set(produced) <= {"flow"}:
        # A Python flow has no components: its one answer is its chat output.
        text = output.get("text")
        return [] if text is None else [(None, str(text))]
    kind = req.output_type.lower()
    return [(c, t) for c, t in produced.items() if kind in ("any", "debug") or kind in c.lower()]


def run_response(run: Run, req: SimplifiedRequest) -> dict[str, Any]:
    """LangFlow's ``RunResponse`` for a succeeded run."""
    inputs = {} if run.input is None else {"input_value": run.input}
    outputs = [_result_data(run, c, t) for c, t in selected_outputs(run, req)]
    return {"session_id": run.session_id, "outputs": [{"inputs": inputs, "outputs": outputs}]}


def failure(run: Run) -> RunFailure:
    """A run that did not succeed, as the error a sync call answers (``detail`` is what
    LangFlow's clients show)."""
    error = RunFailure(
        f"run {run.id} was cancelled"
        if run.status == "cancelled"
        else (run.error_message or "the run failed"),
        run_id=run.id,
    )
    error.code = "run_cancelled" if run.status == "cancelled" else (run.error_code or error.code)
    return error


def not_found(name: str) -> FlowNotFound:
    return FlowNotFound(f"Flow not found: no flow {name!r}; GET /api/v1/flows/ lists them")


def line(event: str, data: dict[str, Any]) -> bytes:
    """One stream event as LangFlow writes it: a JSON object, then a blank line."""
    return (json.dumps({"event": event, "data": data}) + "\n\n").encode()


def token(run: Run, component_id: str | None, chunk: str) -> dict[str, Any]:
    """A ``token`` event's data: the chunk and the id of the message it belongs to."""
    msg_id = message(run, "", machine=True, component_id=component_id)["id"]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {"chunk": chunk, "id": msg_id, "timestamp": stamp}


def langflow_flow(flow: Flow) -> dict[str, Any]:
    """A flow as LangFlow's ``GET /api/v1/flows/`` lists it (``FlowRead`` fields clients
    read); ``endpoint_name`` is the flowfleet id, which ``/api/v1/run/{name}`` accepts."""
    return {
        "id": flow_uuid(flow.id),
        "name": flow.name,
        "description": flow.description,
        "data": None,
        "is_component": False,
        "updated_at": flow.updated_at.isoformat(),
        "endpoint_name": flow.id,
        "tags": [],
        "folder_id": None,
        "user_id": None,
        "icon": None,
        "icon_bg_color": None,
        "gradient": None,
        "locked": False,
        "mcp_enabled": False,
        "webhook": False,
        "access_type": "PRIVATE",
    }


# --- OpenAI Responses API (LangFlow's ``POST /api/v1/responses``): ``model`` names the flow.


class ResponsesRequest(BaseModel):
    """The fields of a Responses API request that LangFlow uses; others are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[Any]
    stream: bool = False
    previous_response_id: str | None = None
    tools: list[Any] | None = None


def openai_error(
    status: int,
    message: str,
    code: str,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in OpenAI's shape, which OpenAI clients parse and raise (the same shape as
    ``api.routes.openai_compat``'s; routes may not import each other)."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def responses_input(req: ResponsesRequest) -> str:
    """The run's input: the string, or the text of the last user item of an input list."""
    if isinstance(req.input, str):
        return req.input
    for item in reversed(req.input):
        if not isinstance(item, dict) or item.get("role", "user") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                str(p.get("text", ""))
                for p in content
                if isinstance(p, dict) and p.get("type") in ("input_text", "text")
            )
    raise InvalidRequest("input must be a string or hold a user message", field="input")


def responses_session(req: ResponsesRequest) -> str:
    """As in LangFlow, ``previous_response_id`` is the session, and a response's id is its
    session's: a conversation keeps one id; a request without one starts a new session."""
    return req.previous_response_id or str(uuid.uuid4())


def output_message(response_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"msg_{response_id}",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def response_object(
    req: ResponsesRequest,
    response_id: str,
    run: Run,
    *,
    status: str = "completed",
    text: str | None = None,
) -> dict[str, Any]:
    """An OpenAI ``Response`` object for the run (``output_text`` is what clients read)."""
    usage = run.usage or {}
    tokens_in, tokens_out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    answer = text if text is not None else str((run.output or {}).get("text") or "")
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(run.created_at.timestamp()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": req.model,
        "output": [] if status == "in_progress" else [output_message(response_id, answer)],
        "parallel_tool_calls": True,
        "previous_response_id": req.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": tokens_in,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": tokens_out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tokens_in + tokens_out,
        },
        "user": None,
        "metadata": {},
    }


def sse(event: dict[str, Any]) -> bytes:
    """One Responses stream event: ``event:`` names its type, ``data:`` holds it."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


# --- LangFlow's v2 Workflow API: ``POST /api/v2/workflows`` (sync, stream, background),
# ``GET /api/v2/workflows?job_id=`` and ``POST /api/v2/workflows/stop``; a job is a run.

_INPUT_KINDS = ("ChatInput", "TextInput")
JOB_STATUS = {
    "queued": "queued",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}


class WorkflowRequest(BaseModel):
    """LangFlow's ``WorkflowExecutionRequest`` (it forbids other fields; so do we)."""

    model_config = ConfigDict(extra="forbid")

    flow_id: str
    inputs: dict[str, Any] | None = None
    stream: bool = False
    background: bool = False


class StopRequest(BaseModel):
    """LangFlow's ``WorkflowStopRequest``."""

    job_id: str


def workflow_request(req: WorkflowRequest) -> SimplifiedRequest:
    """Flat ``"component.param": value`` inputs as a v1 request: an input component's
    ``input_value`` is the run's input, any ``session_id`` its session, the rest tweaks."""
    tweaks: dict[str, dict[str, Any]] = {}
    input_value: str | None = None
    session_id: str | None = None
    for key, value in (req.inputs or {}).items():
        component, dot, param = key.rpartition(".")
        if not dot or not component or not param:
            raise InvalidRequest(
                f"inputs key {key!r} must be 'component_id.param_name'", field="inputs"
            )
        if param == "input_value" and component.split("-", 1)[0] in _INPUT_KINDS:
            input_value = None if value is None else str(value)
        elif param == "session_id":
            session_id = None if value is None else str(value)
        else:
            tweaks.setdefault(component, {})[param] = value
    return SimplifiedRequest(input_value=input_value, session_id=session_id, tweaks=tweaks)


def _iso(when: datetime | None) -> str:
    return (when or datetime.now(UTC)).astimezone(UTC).isoformat()


def job_status(run: Run) -> str:
    if run.status == "failed" and run.error_code == "timeout":
        return "timed_out"
    return JOB_STATUS.get(run.status, run.status)


def workflow_response(run: Run, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``WorkflowExecutionResponse`` for the run: each output component's content."""
    outputs: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    status = job_status(run)
    if run.status == "succeeded":
        every = SimplifiedRequest(output_type="any")
        for component, text in selected_outputs(run, every):
            outputs[component or "output"] = {
                "type": "message",
                "status": status,
                "content": text,
                "metadata": {"component_id": component},
            }
    elif run.error_code or run.status == "cancelled":
        failed = failure(run)
        errors.append({"error": failed.message, "code": failed.code, "details": None})
    return {
        "flow_id": run.flow_id,
        "job_id": run.id,
        "object": "response",
        "created_timestamp": _iso(run.created_at),
        "status": status,
        "errors": errors,
        "inputs": inputs if inputs is not None else _run_inputs(run),
        "outputs": outputs,
    }


def _run_inputs(run: Run) -> dict[str, Any]:
    return {} if run.input is None else {"input_value": run.input}


def job_response(run: Run) -> dict[str, Any]:
    """A ``WorkflowJobResponse``: the job was queued; where to poll and stop it."""
    return {
        "job_id": run.id,
        "flow_id": run.flow_id,
        "object": "job",
        "created_timestamp": _iso(run.created_at),
        "status": job_status(run),
        "links": {
            "status": f"/api/v2/workflows?job_id={run.id}",
            "stop": "/api/v2/workflows/stop",
        },
        "errors": [],
    }


def workflow_event(run: Run, kind: str, raw: dict[str, Any]) -> bytes:
    """One ``WorkflowStreamEvent`` as an SSE message."""
    event = {"type": kind, "run_id": run.id, "timestamp": int(time.time()), "raw_event": raw}
    return f"event: {kind}\ndata: {json.dumps(event)}\n\n".encode()


async def stop_run(state: AppState, run_id: str, *, owner: str | None) -> Run:
    """Cancel a run as ``POST /v1/runs/{id}/cancel`` does: a queued one now (followers and
    its webhook told), a running one flagged for its worker. 409 if it already finished."""
    async with state.sessions() as db:
        run = await run_service.cancel_run(db, run_id, owner=owner)
        await db.commit()
    if run.status == "cancelled":
        await event_service.announce_cancelled(state, run)
        if run.webhook_url:
            await anyio.to_thread.run_sync(
                lambda: state.celery.send_task(WEBHOOK_TASK, args=[run.id])
            )
    else:
        await event_service.flag_cancel(state, run.id)
    return run
