"""Submit runs and read them back."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Path, Query, Response, status

from api.auth import RUNS_READ, RUNS_WRITE, Caller, requires
from api.limits import check_run_limits
from api.routes.events import wait_for
from api.services import events as event_service
from api.services import files as file_service
from api.services import flows as flow_service
from api.services import runs as run_service
from api.state import Db, SessionOnDemand, State
from flows.definitions import FLOW_ID_PATTERN
from shared.errors import InvalidRequest
from shared.logging import get_logger
from shared.metrics import RUNS_SUBMITTED
from shared.models import Run
from shared.queue import WEBHOOK_TASK
from shared.schemas import (
    BatchAccepted,
    BatchCreate,
    RunCreate,
    RunOut,
    RunPage,
    RunStatus,
    run_out,
)
from shared.webhooks import validate_url

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
        503: {"description": "backend_unavailable"},
    },
)
async def submit_run(
    flow_id: FlowId,
    body: RunCreate,
    state: State,
    caller: Caller,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=256)
    ] = None,
    wait: Annotated[float | None, Query(ge=0, description="seconds to wait for the end")] = None,
) -> RunOut:
    """Record a run and queue it; answers at once with the run (poll its Location)."""
    check_run_limits(body, state.settings)
    if body.webhook:
        validate_url(state.settings, body.webhook)
    created = True
    async with SessionOnDemand(state.sessions) as db:
        flow = await flow_service.flow_for_submit(db, flow_id, owner=caller.visible_owner)
        await flow_service.check_tweaks(db, flow, body.tweaks)
        await file_service.check_run_files(
            db, flow, body.tweaks, owner=caller.owner, settings=state.settings
        )
        await state.queue_gauge.check(state.settings, db, flow.id)
        if idempotency_key:
            run, created = await run_service.create_run_idempotent(
                db,
                flow=flow,
                body=body,
                key=idempotency_key,
                owner=caller.owner,
                ttl_s=state.settings.idempotency_ttl_s,
            )
            await db.commit()
        else:
            run = run_service.new_run(flow, body, caller.owner)
    # The session is closed: no pooled connection is held while waiting for the shared write.
    if not idempotency_key:
        await state.run_writer.accept(run)
    elif created:
        await state.run_writer.enqueue([run])
    if created:
        log.info("run.submitted", run_id=run.id, flow_id=flow_id)
        RUNS_SUBMITTED.labels(flow_id).inc()
    else:
        response.status_code = status.HTTP_200_OK  # the original run of this key
    response.headers["Location"] = f"/v1/runs/{run.id}"
    if wait:
        run, finished = await wait_for(state, run, wait, caller.visible_owner)
        if finished:
            response.status_code = status.HTTP_200_OK
    return run_out(run)


async def accept(db: Db, state: State, run: Run) -> None:
    """Store and queue a new run (written together with other requests' runs)."""
    await db.close()  # no pooled connection held while waiting for the shared write
    await state.run_writer.accept(run)


@router.post(
    "/flows/{flow_id}/runs:batch",
    dependencies=[requires(RUNS_WRITE)],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchAccepted,
    responses={404: {"description": "flow_not_found"}, 422: {"description": "too many inputs"}},
)
async def submit_batch(
    flow_id: FlowId, body: BatchCreate, db: Db, state: State, caller: Caller
) -> BatchAccepted:
    """Record one run per input in one transaction, then queue each; answers their ids."""
    if len(body.inputs) > state.settings.max_batch:
        raise InvalidRequest(
            f"a batch holds at most {state.settings.max_batch} inputs, got {len(body.inputs)}",
            field="inputs",
        )
    for item in body.inputs:
        check_run_limits(item, state.settings)
        if item.webhook:
            validate_url(state.settings, item.webhook)
    flow = await flow_service.flow_for_submit(db, flow_id, owner=caller.visible_owner)
    for item in body.inputs:
        await file_service.check_run_files(
            db, flow, item.tweaks, owner=caller.owner, settings=state.settings
        )
    await state.queue_gauge.check(state.settings, db, flow.id, adding=len(body.inputs))
    runs = await run_service.create_runs(db, flow=flow, bodies=body.inputs, owner=caller.owner)
    await db.commit()
    ids = [run.id for run in runs]
    await state.run_writer.enqueue(runs)  # one LPUSH; unreachable: the rows go, 503
    log.info("batch.submitted", flow_id=flow_id, runs=len(ids))
    RUNS_SUBMITTED.labels(flow_id).inc(len(ids))
    return BatchAccepted(run_ids=ids)


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
    run = await run_service.cancel_run(db, run_id, owner=caller.visible_owner)
    await db.commit()
    if run.status == "cancelled":
        await event_service.announce_cancelled(state, run)
        if run.webhook_url:
            await anyio.to_thread.run_sync(
                lambda: state.celery.send_task(WEBHOOK_TASK, args=[run.id])
            )
    else:
        await event_service.flag_cancel(state, run.id)
        response.status_code = status.HTTP_202_ACCEPTED
    log.info("run.cancel_requested", run_id=run_id, status=run.status)
    return run_out(run)


@router.post(
    "/runs/{run_id}/retry",
    dependencies=[requires(RUNS_WRITE)],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    responses={404: {"description": "run_not_found"}, 409: {"description": "run_not_finished"}},
)
async def retry_run(
    run_id: str, db: Db, state: State, caller: Caller, response: Response
) -> RunOut:
    """Submit a finished run again (same input, session, tweaks) as a new run."""
    original = await run_service.get_run(db, run_id, owner=caller.visible_owner)
    await state.queue_gauge.check(state.settings, db, original.flow_id)
    run = await run_service.retry_run(
        db, original, owner=caller.owner, flow_owner=caller.visible_owner
    )
    await accept(db, state, run)
    log.info("run.resubmitted", run_id=run.id, retry_of=original.id)
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
