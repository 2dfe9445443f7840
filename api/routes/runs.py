"""Submit runs and read them back."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Query, Response, status

from api.auth import Caller
from api.limits import check_run_limits
from api.services import flows as flow_service
from api.services import runs as run_service
from api.state import Db, State
from flows.definitions import FLOW_ID_PATTERN
from shared.errors import BackendUnavailable
from shared.logging import get_logger
from shared.queue import enqueue_run
from shared.schemas import RunCreate, RunOut, RunPage, RunStatus, run_out

router = APIRouter(prefix="/v1", tags=["runs"])
log = get_logger("api.runs")
FlowId = Annotated[str, Path(pattern=FLOW_ID_PATTERN)]


@router.post(
    "/flows/{flow_id}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    responses={404: {"description": "flow_not_found"}, 503: {"description": "backend_unavailable"}},
)
async def submit_run(
    flow_id: FlowId, body: RunCreate, db: Db, state: State, caller: Caller, response: Response
) -> RunOut:
    """Record a run and queue it; answers at once with the run (poll its Location)."""
    check_run_limits(body, state.settings)
    flow = await flow_service.get_flow(db, flow_id)
    await state.queue_gauge.check(state.settings, flow.id)
    run = await run_service.create_run(db, flow=flow, body=body, owner=caller.owner)
    await db.commit()
    await _enqueue(db, state, run.id)
    log.info("run.submitted", run_id=run.id, flow_id=flow_id)
    response.headers["Location"] = f"/v1/runs/{run.id}"
    return run_out(run)


@router.post(
    "/runs/{run_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    responses={404: {"description": "run_not_found"}, 409: {"description": "run_not_finished"}},
)
async def retry_run(
    run_id: str, db: Db, state: State, caller: Caller, response: Response
) -> RunOut:
    """Submit a finished run again (same input, session, tweaks) as a new run."""
    original = await run_service.get_run(db, run_id, owner=caller.visible_owner)
    await state.queue_gauge.check(state.settings, original.flow_id)
    run = await run_service.retry_run(db, original, owner=caller.owner)
    await db.commit()
    await _enqueue(db, state, run.id)
    log.info("run.resubmitted", run_id=run.id, retry_of=original.id)
    response.headers["Location"] = f"/v1/runs/{run.id}"
    return run_out(run)


async def _enqueue(db: Db, state: State, run_id: str) -> None:
    try:
        await anyio.to_thread.run_sync(enqueue_run, state.celery, run_id)
    except Exception as exc:
        # The run row must not outlive a failed enqueue: the client was told nothing was taken.
        log.warning("run.enqueue_failed", run_id=run_id, error=type(exc).__name__)
        await _forget_unqueued(db, run_id)
        raise BackendUnavailable("the queue is unreachable; the run was not accepted") from exc


async def _forget_unqueued(db: Db, run_id: str) -> None:
    try:
        await db.delete(await run_service.get_run(db, run_id))
        await db.commit()
    except Exception:
        # If even that fails the row stays `queued` and the sweep enqueues it later.
        log.warning("run.unqueued_row_kept", run_id=run_id)


@router.get(
    "/runs/{run_id}", response_model=RunOut, responses={404: {"description": "run_not_found"}}
)
async def get_run(run_id: str, db: Db, caller: Caller) -> RunOut:
    """The run: status, output, error, usage and timings."""
    return run_out(await run_service.get_run(db, run_id, owner=caller.visible_owner))


@router.get("/runs", response_model=RunPage)
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
