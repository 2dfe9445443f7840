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

from api.auth import RUNS_READ, RUNS_WRITE, Caller, requires
from api.problems import problem_response
from api.services import events as event_service
from api.services import flows as flow_service
from api.services import langflow_compat as lf
from api.services import submit as submit_service
from api.services.events import SSE_HEADERS
from api.state import Db, State
from shared.errors import FlowNotFound
from shared.models import Run

router = APIRouter(prefix="/api/v1", tags=["langflow"])


@router.post("/run/{flow_id_or_name}", dependencies=[requires(RUNS_WRITE)], response_model=None)
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


async def _stream(
    state: State, run: Run, req: lf.SimplifiedRequest, owner: str | None
) -> AsyncIterator[bytes]:
    """The run's events as LangFlow streams a run: the user's message, the AI message being
    written, its tokens, the finished message, then ``end`` with the whole response."""
    if run.input is not None:
        yield lf.line("add_message", lf.message(run, run.input, machine=False))
    yield lf.line("add_message", lf.message(run, "", machine=True))
    async for _, event, data in event_service.follow(state, run, owner=owner):
        if event == "token" and data.get("text"):
            yield lf.line("token", lf.token(run, None, str(data["text"])))
        elif event == "done":
            final = await event_service.load_run(state, run.id, owner)
            if final.status == "succeeded":
                for component_id, text in lf.selected_outputs(final, req):
                    yield lf.line(
                        "add_message",
                        lf.message(final, text, machine=True, component_id=component_id),
                    )
                yield lf.line("end", {"result": lf.run_response(final, req)})
            else:
                error = lf.failure(final)
                yield lf.line("error", {"error": error.message, "code": error.code})


@router.get("/flows/", dependencies=[requires(RUNS_READ)])
async def list_flows(db: Db, caller: Caller) -> list[dict[str, Any]]:
    """The flows this key may run, as LangFlow lists them (``endpoint_name`` is the id)."""
    return [
        lf.langflow_flow(f) for f in await flow_service.list_flows(db, owner=caller.visible_owner)
    ]


@router.get("/flows/{flow_id_or_name}", dependencies=[requires(RUNS_READ)])
async def get_flow(flow_id_or_name: str, db: Db, caller: Caller) -> dict[str, Any]:
    """One flow, by its flowfleet id or the UUID it is listed under."""
    flow_id = await lf.resolve_flow_id(db, flow_id_or_name, owner=caller.visible_owner)
    try:
        flow = await flow_service.get_flow(db, flow_id, owner=caller.visible_owner)
    except FlowNotFound as exc:
        raise lf.not_found(flow_id_or_name) from exc
    return lf.langflow_flow(flow)
