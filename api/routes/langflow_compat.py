"""LangFlow's API, served from the queue: ``/api/v1/run/{flow}``, its stream, flow listing.

Every call is an ordinary flowfleet run (queued, recorded, cancellable through ``/v1/runs``;
its id is in the ``X-Flowfleet-Run-Id`` header): a sync call submits and waits, a streamed
one submits and follows the run's events. Shapes are in ``api.services.langflow_compat``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from api.auth import RUNS_READ, RUNS_WRITE, Caller, requires
from api.problems import problem_response
from api.services import events as event_service
from api.services import flows as flow_service
from api.services import langflow_compat as lf
from api.services import submit as submit_service
from api.services.events import SSE_HEADERS
from api.state import Db, State
from shared.errors import FlowfleetError, FlowNotFound, InvalidRequest
from shared.models import Run

router = APIRouter(tags=["langflow"])


@router.post(
    "/api/v1/run/{flow_id_or_name}", dependencies=[requires(RUNS_WRITE)], response_model=None
)
async def run_flow(
    flow_id_or_name: str,
    request: Request,
    state: State,
    caller: Caller,
    stream: Annotated[bool, Query()] = False,
) -> Response:
    """Run a flow LangFlow's way: ``input_value``, ``tweaks``, ``session_id``; the answer in
    ``outputs[0].outputs[0].results.message.text``, or streamed with ``?stream=true``."""
    req = lf.parse_request(await request.body())
    who = submit_service.submitter(
        state.settings, caller, request.client.host if request.client else None
    )
    streamed = stream or req.stream  # langflow-sdk asks in the body, LangFlow's docs in the query
    async with state.sessions() as db:
        flow_id = await lf.resolve_flow_id(db, flow_id_or_name, owner=caller.visible_owner)
        streaming = (
            await lf.stream_tweaks(db, flow_id, owner=caller.visible_owner) if streamed else None
        )
    try:
        accepted = await submit_service.submit(
            state, who, flow_id=flow_id, body=lf.run_request(req, flow_id, streaming)
        )
    except FlowNotFound as exc:
        raise lf.not_found(flow_id_or_name) from exc
    run = accepted.run
    headers = {"X-Flowfleet-Run-Id": run.id}
    if streamed:
        return StreamingResponse(
            _stream(state, run, req, caller.visible_owner),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **headers},
        )
    run, finished = await event_service.wait_for(
        state, run, state.settings.wait_max_s, caller.visible_owner
    )
    if not finished:
        return JSONResponse(
            {
                "detail": f"run {run.id} did not finish in {state.settings.wait_max_s:g} s; "
                f"it goes on: GET /v1/runs/{run.id}/wait",
                "run_id": run.id,
            },
            status_code=504,
            headers=headers,
        )
    if run.status != "succeeded":
        return problem_response(lf.failure(run), request, headers)
    return JSONResponse(lf.run_response(run, req), headers=headers)


async def _events(
    state: State, run: Run, req: lf.SimplifiedRequest, owner: str | None
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The run's events as LangFlow streams a run: the user's message, the AI message being
    written, its tokens, the finished message, then ``end`` with the whole response."""
    if run.input is not None:
        yield "add_message", lf.message(run, run.input, machine=False)
    yield "add_message", lf.message(run, "", machine=True)
    async for _, event, data in event_service.follow(state, run, owner=owner):
        if event == "token" and data.get("text"):
            yield "token", lf.token(run, None, str(data["text"]))
        elif event == "done":
            final = await event_service.load_run(state, run.id, owner)
            if final.status == "succeeded":
                for component_id, text in lf.selected_outputs(final, req):
                    message = lf.message(final, text, machine=True, component_id=component_id)
                    yield "add_message", message
                yield "end", {"result": lf.run_response(final, req)}
            else:
                error = lf.failure(final)
                yield "error", {"error": error.message, "code": error.code}


async def _stream(
    state: State, run: Run, req: lf.SimplifiedRequest, owner: str | None
) -> AsyncIterator[bytes]:
    async for event, data in _events(state, run, req, owner):
        yield lf.line(event, data)


@router.get("/api/v1/flows/", dependencies=[requires(RUNS_READ)])
async def list_flows(db: Db, caller: Caller) -> list[dict[str, Any]]:
    """The flows this key may run, as LangFlow lists them (``endpoint_name`` is the id)."""
    return [
        lf.langflow_flow(f) for f in await flow_service.list_flows(db, owner=caller.visible_owner)
    ]


@router.get("/api/v1/flows/{flow_id_or_name}", dependencies=[requires(RUNS_READ)])
async def get_flow(flow_id_or_name: str, db: Db, caller: Caller) -> dict[str, Any]:
    """One flow, by its flowfleet id or the UUID it is listed under."""
    flow_id = await lf.resolve_flow_id(db, flow_id_or_name, owner=caller.visible_owner)
    try:
        flow = await flow_service.get_flow(db, flow_id, owner=caller.visible_owner)
    except FlowNotFound as exc:
        raise lf.not_found(flow_id_or_name) from exc
    return lf.langflow_flow(flow)


@router.post("/api/v1/responses", dependencies=[requires(RUNS_WRITE)], response_model=None)
async def create_response(request: Request, state: State, caller: Caller) -> Response:
    """OpenAI's Responses API over a flow (``model`` is the flow id or listed UUID), as
    LangFlow serves it: ``previous_response_id`` continues that conversation's session."""
    try:
        req = lf.ResponsesRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or None
        return lf.openai_error(400, f"{field}: {err.get('msg', 'invalid')}", "invalid", param=field)
    if req.tools is not None:
        return lf.openai_error(
            400, "Tools are not supported yet", "tools_not_supported", param="tools"
        )
    who = submit_service.submitter(
        state.settings, caller, request.client.host if request.client else None
    )
    session = lf.responses_session(req)
    try:
        async with state.sessions() as db:
            flow_id = await lf.resolve_flow_id(db, req.model, owner=caller.visible_owner)
            streaming = (
                await lf.stream_tweaks(db, flow_id, owner=caller.visible_owner)
                if req.stream
                else None
            )
        body = lf.run_request(
            lf.SimplifiedRequest(input_value=lf.responses_input(req), session_id=session),
            flow_id,
            streaming,
        )
        run = (await submit_service.submit(state, who, flow_id=flow_id, body=body)).run
    except FlowNotFound:
        return lf.openai_error(
            404, f"Flow with id '{req.model}' not found", "flow_not_found", param="model"
        )
    except FlowfleetError as exc:
        field = exc.extra.get("field")
        return lf.openai_error(
            exc.status,
            exc.message,
            exc.code,
            param=None if field is None else str(field),
            headers=exc.headers(),
        )
    headers = {"X-Flowfleet-Run-Id": run.id}
    if req.stream:
        return StreamingResponse(
            _response_events(state, run, req, session, caller.visible_owner),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **headers},
        )
    run, finished = await event_service.wait_for(
        state, run, state.settings.wait_max_s, caller.visible_owner
    )
    if not finished:
        return lf.openai_error(504, f"run {run.id} did not finish in time; it goes on", "timeout")
    if run.status != "succeeded":
        error = lf.failure(run)
        status = 409 if run.status == "cancelled" else 502
        return lf.openai_error(status, error.message, error.code, headers=headers)
    return JSONResponse(lf.response_object(req, session, run), headers=headers)


async def _response_events(
    state: State, run: Run, req: lf.ResponsesRequest, response_id: str, owner: str | None
) -> AsyncIterator[bytes]:
    """The run as the Responses API's typed stream events, which OpenAI's clients parse."""
    seq = iter(range(1_000_000_000))
    item_id = f"msg_{response_id}"
    at = {"item_id": item_id, "output_index": 0, "content_index": 0}
    pending = lf.response_object(req, response_id, run, status="in_progress")
    yield lf.sse({"type": "response.created", "sequence_number": next(seq), "response": pending})
    yield lf.sse(
        {"type": "response.in_progress", "sequence_number": next(seq), "response": pending}
    )
    item = lf.output_message(response_id, "", "in_progress")
    yield lf.sse(
        {
            "type": "response.output_item.added",
            "sequence_number": next(seq),
            "output_index": 0,
            "item": {**item, "content": []},
        }
    )
    part = {"type": "output_text", "text": "", "annotations": []}
    yield lf.sse(
        {"type": "response.content_part.added", "sequence_number": next(seq), **at, "part": part}
    )
    text = ""
    async for _, event, data in event_service.follow(state, run, owner=owner):
        if event == "token" and data.get("text"):
            text += str(data["text"])
            delta = {"delta": str(data["text"]), "logprobs": []}
            yield lf.sse(
                {"type": "response.output_text.delta", "sequence_number": next(seq), **at, **delta}
            )
        elif event == "done":
            final = await event_service.load_run(state, run.id, owner)
            if final.status != "succeeded":
                error = lf.failure(final)
                failed = lf.response_object(req, response_id, final, status="failed", text="")
                failed["error"] = {"code": error.code, "message": error.message}
                yield lf.sse(
                    {"type": "response.failed", "sequence_number": next(seq), "response": failed}
                )
                return
            answer = str((final.output or {}).get("text") or "")
            if not text and answer:  # a model that did not stream: its answer in one delta
                yield lf.sse(
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": next(seq),
                        **at,
                        "delta": answer,
                        "logprobs": [],
                    }
                )
            done_part = {**part, "text": answer}
            yield lf.sse(
                {
                    "type": "response.output_text.done",
                    "sequence_number": next(seq),
                    **at,
                    "text": answer,
                    "logprobs": [],
                }
            )
            yield lf.sse(
                {
                    "type": "response.content_part.done",
                    "sequence_number": next(seq),
                    **at,
                    "part": done_part,
                }
            )
            yield lf.sse(
                {
                    "type": "response.output_item.done",
                    "sequence_number": next(seq),
                    "output_index": 0,
                    "item": lf.output_message(response_id, answer),
                }
            )
            completed = lf.response_object(req, response_id, final)
            yield lf.sse(
                {"type": "response.completed", "sequence_number": next(seq), "response": completed}
            )


@router.post("/api/v2/workflows", dependencies=[requires(RUNS_WRITE)], response_model=None)
async def execute_workflow(request: Request, state: State, caller: Caller) -> Response:
    """LangFlow's v2 Workflow API: sync (submit and wait), ``stream`` (the run's events),
    ``background`` (a job to poll and stop); ``inputs`` are ``"component.param": value``."""
    try:
        wf = lf.WorkflowRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "body"
        raise InvalidRequest(f"{field}: {err.get('msg', 'invalid')}", field=field) from exc
    req = lf.workflow_request(wf)
    who = submit_service.submitter(
        state.settings, caller, request.client.host if request.client else None
    )
    async with state.sessions() as db:
        flow_id = await lf.resolve_flow_id(db, wf.flow_id, owner=caller.visible_owner)
        streaming = (
            await lf.stream_tweaks(db, flow_id, owner=caller.visible_owner) if wf.stream else None
        )
    try:
        accepted = await submit_service.submit(
            state, who, flow_id=flow_id, body=lf.run_request(req, flow_id, streaming)
        )
    except FlowNotFound as exc:
        raise lf.not_found(wf.flow_id) from exc
    run = accepted.run
    headers = {"X-Flowfleet-Run-Id": run.id}
    if wf.background:
        return JSONResponse(lf.job_response(run), headers=headers)
    if wf.stream:
        return StreamingResponse(
            _workflow_stream(state, run, req, caller.visible_owner),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **headers},
        )
    run, _ = await event_service.wait_for(
        state, run, state.settings.wait_max_s, caller.visible_owner
    )
    # Not finished in time: the answer says so (queued / in_progress) with its job id to poll.
    return JSONResponse(lf.workflow_response(run, wf.inputs or {}), headers=headers)


async def _workflow_stream(
    state: State, run: Run, req: lf.SimplifiedRequest, owner: str | None
) -> AsyncIterator[bytes]:
    async for event, data in _events(state, run, req, owner):
        yield lf.workflow_event(run, event, data)


@router.get("/api/v2/workflows", dependencies=[requires(RUNS_READ)])
async def workflow_status(
    state: State, caller: Caller, job_id: Annotated[str, Query()]
) -> dict[str, Any]:
    """A job's status and, once it finished, its outputs or errors."""
    run = await event_service.load_run(state, job_id, caller.visible_owner)
    return lf.workflow_response(run)


@router.post("/api/v2/workflows/stop", dependencies=[requires(RUNS_WRITE)])
async def stop_workflow(request: Request, state: State, caller: Caller) -> dict[str, Any]:
    """Stop a job: a queued run is cancelled at once, a running one when its worker notices."""
    try:
        job_id = lf.StopRequest.model_validate_json(await request.body()).job_id
    except ValidationError as exc:
        raise InvalidRequest('send {"job_id": "<job id>"}', field="job_id") from exc
    run = await lf.stop_run(state, job_id, owner=caller.visible_owner)
    said = "cancelled" if run.status == "cancelled" else "stop requested; it stops shortly"
    return {"job_id": run.id, "message": f"Job {run.id} {said}"}
