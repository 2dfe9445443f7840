"""Schedules as the API sees them: create, list, read, change, delete (docs/schedules.md).

A schedule's run request passes the submit service's checks (sizes, flow, tweaks) when it
is made and whenever it changes; firing is the worker's (shared/schedules.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Select, select

from api.services import submit as submit_service
from api.services.submit import Submitter
from api.state import AppState
from shared.db import transaction
from shared.errors import ScheduleNotFound
from shared.models import Schedule
from shared.schedules import check_cron, db_now, next_due, zone
from shared.schemas import SESSION_ID_PATTERN, RunCreate, refuse_unstorable


class _RunFields(BaseModel):
    input: str | None = Field(default=None, description="The text each firing's run receives.")
    tweaks: dict[str, dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="Stored with each run.")
    session_id: str | None = Field(
        default=None,
        pattern=SESSION_ID_PATTERN,
        description="Every firing continues this conversation; unset: a fresh one per firing.",
    )

    @field_validator("input", "tweaks", "metadata", "session_id")
    @classmethod
    def _storable(cls, value: Any, info: Any) -> Any:
        refuse_unstorable(value, info.field_name)
        return value


class ScheduleCreate(_RunFields):
    """Run a flow on a cron schedule."""

    model_config = ConfigDict(extra="forbid")

    flow_id: str = Field(max_length=128)
    cron: str = Field(
        max_length=256,
        description="5 fields (minute hour day month weekday), or 6 with seconds first.",
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA zone of the cron.")
    paused: bool = False


class SchedulePatch(_RunFields):
    """Change a schedule; ``{"paused": true}`` pauses it. Absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(default=None, max_length=256)
    timezone: str | None = Field(default=None, max_length=64)
    paused: bool | None = None


class ScheduleOut(BaseModel):
    id: str
    flow_id: str
    cron: str
    timezone: str
    input: str | None
    tweaks: dict[str, Any]
    metadata: dict[str, Any]
    session_id: str | None
    paused: bool
    next_fire_at: datetime | None = Field(description="The next due time (UTC); null if paused.")
    last_fired_at: datetime | None
    last_run_id: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class SchedulePage(BaseModel):
    items: list[ScheduleOut]


def schedule_out(s: Schedule) -> ScheduleOut:
    return ScheduleOut(
        id=s.id,
        flow_id=s.flow_id,
        cron=s.cron,
        timezone=s.timezone,
        input=s.input,
        tweaks=s.tweaks or {},
        metadata=s.meta or {},
        session_id=s.session_id,
        paused=s.paused,
        next_fire_at=None if s.paused else s.next_fire_at,
        last_fired_at=s.last_fired_at,
        last_run_id=s.last_run_id,
        last_error=s.last_error,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def _run_request(s: Schedule) -> RunCreate:
    return RunCreate(
        input=s.input, session_id=s.session_id, tweaks=s.tweaks or {}, metadata=s.meta or {}
    )


async def create(state: AppState, who: Submitter, body: ScheduleCreate) -> Schedule:
    """Check the schedule and its run request, then store it due at its next cron time."""
    check_cron(body.cron)
    zone(body.timezone)
    run = RunCreate(
        input=body.input,
        session_id=body.session_id,
        tweaks=body.tweaks or {},
        metadata=body.metadata or {},
    )
    flow = await submit_service.check(state, who, flow_id=body.flow_id, body=run)
    async with transaction(state.sessions) as session:
        now = await db_now(session)
        schedule = Schedule(
            id=str(uuid.uuid4()),
            owner=who.owner,
            flow_id=flow.id,
            flow_owner=flow.owner,
            cron=body.cron,
            timezone=body.timezone,
            input=run.input,
            tweaks=run.tweaks,
            meta=run.metadata,
            session_id=run.session_id,
            paused=body.paused,
            next_fire_at=next_due(body.cron, body.timezone, now),
            created_at=now,
            updated_at=now,
        )
        session.add(schedule)
    return schedule


async def get(state: AppState, schedule_id: str, *, owner: str | None) -> Schedule:
    async with state.sessions() as session:
        return await _get(session, schedule_id, owner)


async def _get(session: Any, schedule_id: str, owner: str | None) -> Schedule:
    schedule = await session.get(Schedule, schedule_id)
    if schedule is None or (owner is not None and schedule.owner != owner):
        raise ScheduleNotFound(f"no schedule with id {schedule_id!r}; GET /v1/schedules lists them")
    return schedule  # type: ignore[no-any-return]


def list_schedules_query(*, owner: str | None, flow_id: str | None, limit: int) -> Select[Schedule]:
    """The list's statement, newest first."""
    query = select(Schedule)
    if owner is not None:
        query = query.where(Schedule.owner == owner)
    if flow_id:
        query = query.where(Schedule.flow_id == flow_id)
    return query.order_by(Schedule.created_at.desc(), Schedule.id.desc()).limit(limit)


async def list_schedules(
    state: AppState, *, owner: str | None, flow_id: str | None, limit: int
) -> list[Schedule]:
    """Newest first."""
    query = list_schedules_query(owner=owner, flow_id=flow_id, limit=limit)
    async with state.sessions() as session:
        return list((await session.scalars(query)).all())


async def change(
    state: AppState, who: Submitter, schedule_id: str, body: SchedulePatch, *, owner: str | None
) -> Schedule:
    """Apply the fields sent; a new cron, zone or an unpause counts from now (no catch-up)."""
    sent = body.model_fields_set
    async with transaction(state.sessions) as session:
        schedule = await _get(session, schedule_id, owner)
        if "cron" in sent and body.cron is not None:
            schedule.cron = check_cron(body.cron)
        if "timezone" in sent and body.timezone is not None:
            zone(body.timezone)
            schedule.timezone = body.timezone
        if "input" in sent:
            schedule.input = body.input
        if "tweaks" in sent:
            schedule.tweaks = body.tweaks or {}
        if "metadata" in sent:
            schedule.meta = body.metadata or {}
        if "session_id" in sent:
            schedule.session_id = body.session_id
        if sent & {"input", "tweaks", "metadata", "session_id"}:
            # The run request changed: it passes the submit checks again, as a new one would.
            await submit_service.check(
                state, who, flow_id=schedule.flow_id, body=_run_request(schedule)
            )
        now = await db_now(session)
        resumed = "paused" in sent and body.paused is False and schedule.paused
        if "paused" in sent and body.paused is not None:
            schedule.paused = body.paused
        if resumed or sent & {"cron", "timezone"}:
            schedule.next_fire_at = next_due(schedule.cron, schedule.timezone, now)
        schedule.updated_at = now
    return schedule


async def delete(state: AppState, schedule_id: str, *, owner: str | None) -> None:
    async with transaction(state.sessions) as session:
        await session.delete(await _get(session, schedule_id, owner))
