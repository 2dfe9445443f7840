"""Submit runs and read them back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from api.auth import RUNS_READ, RUNS_WRITE, Caller, Principal, requires
from api.services import events as event_service
from api.services import runs as run_service
from api.services import submit as submit_service
from api.services import turns
from api.services.submit import Submitter
from api.state import AppState, Db, State
from flows.definitions import FLOW_ID_PATTERN
from shared.logging import get_logger
from shared.models import INGEST_FLAG
from shared.schemas import (
    BatchAccepted,
    BatchCreate,
    IngestCreate,
    RunCreate,
    RunOut,
    RunPage,
    RunStatus,
    run_out,
)

router = APIRouter(prefix="/v1", tags=["runs"])
log = get_logger("api.runs")
FlowId = Annotated[str, Path(pattern=FLOW_ID_PATTERN)]


@router.post(
    "/flows/{flow_id}/runs",
    dependencies=[requires(RUNS_WRITE)],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    responses={
        200: {"description": "finished within ?wait=, or an Idempotency-Key replay"},
        404: {"description": "flow_not_found"},
        409: {"description": "idempotency_conflict"},
        413: {"description": "payload_too_large"},
        429: {"description": "rate_limited, key_queue_full"},
        503: {"description": "backend_unavailable, queue_full"},
    },
)
async def submit_run(
    flow_id: FlowId,
    body: RunCreate,
    request: Request,
    state: State,
    caller: Caller,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=256)
    ] = None,
    wait: Annotated[float | None, Query(ge=0, description="seconds to wait for the end")] = None,
) -> RunOut:
    """Record a run and queue it; answers at once with the run (poll its Location)."""
    accepted = await submit_service.submit(
        state,
        _submitter(state, caller, request),
        flow_id=flow_id,
        body=body,
        idempotency_key=idempotency_key,
    )
    run = accepted.run
    if not accepted.created:
        response.status_code = status.HTTP_200_OK  # the original run of this key
    response.headers["Location"] = f"/v1/runs/{run.id}"
    if wait:
        run, finished = await event_service.wait_for(state, run, wait, caller.visible_owner)
        if finished:
            response.status_code = status.HTTP_200_OK
    return run_out(run)


@router.post(
    "/flows/{flow_id}/ingest",
    dependencies=[requires(RUNS_WRITE)],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    responses={
        404: {"description": "flow_not_found"},
        429: {"description": "rate_limited, key_queue_full"},
        503: {"description": "queue_full"},
    },
)
async def ingest_flow(
    flow_id: FlowId,
    request: Request,
    state: State,
    caller: Caller,
    response: Response,
    body: IngestCreate | None = None,
) -> RunOut:
    """Queue a run of only the flow's ingest part (files to vectors, once per content)."""
    body = body or IngestCreate()
    run_body = RunCreate(tweaks=body.tweaks, webhook=body.webhook, metadata={INGEST_FLAG: True})
    accepted = await submit_service.submit(
        state, _submitter(state, caller, request), flow_id=flow_id, body=run_body
    )
    response.headers["Location"] = f"/v1/runs/{accepted.run.id}"
    return run_out(accepted.run)


@router.post(
    "/flows/{flow_id}/runs:batch",
    dependencies=[requires(RUNS_WRITE)],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchAccepted,
    responses={
        404: {"description": "flow_not_found"},
        422: {"description": "too many inputs, or an input is invalid"},
        429: {"description": "rate_limited (one token per run), key_queue_full"},
        503: {"description": "backend_unavailable, queue_full"},
    },
)
async def submit_batch(
    flow_id: FlowId, body: BatchCreate, request: Request, state: State, caller: Caller
) -> BatchAccepted:
    """Record one run per input in one transaction, then queue each; answers their ids."""
    runs = await submit_service.submit_batch(
        state, _submitter(state, caller, request), flow_id=flow_id, bodies=body.inputs
    )
    return BatchAccepted(run_ids=[run.id for run in runs])


def _submitter(state: AppState, caller: Principal, request: Request) -> Submitter:
    return submit_service.submitter(
        state.settings, caller, request.client.host if request.client else None
    )


@router.post(
    "/runs/{run_id}/cancel",
    dependencies=[requires(RUNS_WRITE)],
    response_model=RunOut,
    responses={
        200: {"description": "the run was queued and is now cancelled"},
        202: {"description": "the run is running; its worker was asked to stop it"},
        404: {"description": "run_not_found"},
        409: {"description": "run_finished"},
    },
)
async def cancel_run(
    run_id: str, db: Db, state: State, caller: Caller, response: Response
) -> RunOut:
    """Cancel a run: a queued one at once, a running one as soon as its worker notices."""
    run = await turns.cancel(state, db, run_id, owner=caller.visible_owner)
    if run.status != RunStatus.CANCELLED:
        response.status_code = status.HTTP_202_ACCEPTED
    return run_out(run)


@router.post(
    "/runs/{run_id}/retry",
    dependencies=[requires(RUNS_WRITE)],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    responses={
        404: {"description": "run_not_found"},
        409: {"description": "run_not_finished"},
        429: {"description": "rate_limited, key_queue_full"},
        503: {"description": "backend_unavailable, queue_full"},
    },
)
async def retry_run(
    run_id: str, request: Request, state: State, caller: Caller, response: Response
) -> RunOut:
    """Submit a finished run again (same input, session, tweaks) as a new run."""
    run = await submit_service.retry(
        state, _submitter(state, caller, request), run_id=run_id, visible_owner=caller.visible_owner
    )
    response.headers["Location"] = f"/v1/runs/{run.id}"
    return run_out(run)


@router.get(
    "/runs/{run_id}",
    dependencies=[requires(RUNS_READ)],
    response_model=RunOut,
    responses={404: {"description": "run_not_found"}},
)
async def get_run(run_id: str, db: Db, caller: Caller) -> RunOut:
    """The run: status, output, error, usage and timings."""
    return run_out(await run_service.get_run(db, run_id, owner=caller.visible_owner))


@router.get("/runs", dependencies=[requires(RUNS_READ)], response_model=RunPage)
async def list_runs(
    db: Db,
    caller: Caller,
    flow_id: str | None = None,
    session_id: str | None = None,
    status: RunStatus | None = None,
    error_code: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> RunPage:
    """Runs newest first, filtered by flow, session, status and error code.

    ``?status=failed&error_code=exhausted_retries`` lists the dead letters.
    """
    runs, next_cursor = await run_service.list_runs(
        db,
        owner=caller.visible_owner,
        flow_id=flow_id,
        session_id=session_id,
        status=status,
        error_code=error_code,
        limit=limit,
        cursor=cursor,
    )
    return RunPage(items=[run_out(r) for r in runs], next_cursor=next_cursor)
