"""Schedules: run a flow on a cron schedule (docs/schedules.md). Owner-scoped like runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from api.auth import RUNS_READ, RUNS_WRITE, Caller, Principal, requires
from api.services import schedules as schedule_service
from api.services import submit as submit_service
from api.services.schedules import (
    ScheduleCreate,
    ScheduleOut,
    SchedulePage,
    SchedulePatch,
    schedule_out,
)
from api.services.submit import Submitter
from api.state import State

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])


def _submitter(state: State, caller: Principal, request: Request) -> Submitter:
    return submit_service.submitter(
        state.settings, caller, request.client.host if request.client else None
    )


@router.post(
    "",
    dependencies=[requires(RUNS_WRITE)],
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleOut,
    responses={404: {"description": "flow_not_found"}, 422: {"description": "invalid cron"}},
)
async def create_schedule(
    body: ScheduleCreate, request: Request, state: State, caller: Caller, response: Response
) -> ScheduleOut:
    """Run a flow on a cron schedule; each firing is an ordinary run."""
    schedule = await schedule_service.create(state, _submitter(state, caller, request), body)
    response.headers["Location"] = f"/v1/schedules/{schedule.id}"
    return schedule_out(schedule)


@router.get("", dependencies=[requires(RUNS_READ)], response_model=SchedulePage)
async def list_schedules(
    state: State,
    caller: Caller,
    flow_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SchedulePage:
    """The caller's schedules, newest first."""
    items = await schedule_service.list_schedules(
        state, owner=caller.visible_owner, flow_id=flow_id, limit=limit
    )
    return SchedulePage(items=[schedule_out(s) for s in items])


@router.get(
    "/{schedule_id}",
    dependencies=[requires(RUNS_READ)],
    response_model=ScheduleOut,
    responses={404: {"description": "schedule_not_found"}},
)
async def get_schedule(schedule_id: str, state: State, caller: Caller) -> ScheduleOut:
    """One schedule: its next due time and its last firing."""
    return schedule_out(await schedule_service.get(state, schedule_id, owner=caller.visible_owner))


@router.patch(
    "/{schedule_id}",
    dependencies=[requires(RUNS_WRITE)],
    response_model=ScheduleOut,
    responses={404: {"description": "schedule_not_found"}},
)
async def patch_schedule(
    schedule_id: str, body: SchedulePatch, request: Request, state: State, caller: Caller
) -> ScheduleOut:
    """Change a schedule; ``{"paused": true}`` pauses it, ``false`` resumes from now."""
    schedule = await schedule_service.change(
        state,
        _submitter(state, caller, request),
        schedule_id,
        body,
        owner=caller.visible_owner,
    )
    return schedule_out(schedule)


@router.delete(
    "/{schedule_id}",
    dependencies=[requires(RUNS_WRITE)],
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "schedule_not_found"}},
)
async def delete_schedule(schedule_id: str, state: State, caller: Caller) -> Response:
    """Delete a schedule; runs it already made stay."""
    await schedule_service.delete(state, schedule_id, owner=caller.visible_owner)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
