"""The fleet for the console (admin): queue depth, workers, dead letters, per-minute series."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import ADMIN, requires
from api.services import fleet as fleet_service
from api.state import Db, State

router = APIRouter(prefix="/v1", tags=["fleet"], dependencies=[requires(ADMIN)])


class WorkerOut(BaseModel):
    id: str
    last_seen: datetime
    seconds_since_seen: float
    alive: bool  # beat within a lease; the sweep re-queues a dead one's runs and forgets it
    held_runs: int  # delivered to it and not finished with


class FleetMinute(BaseModel):
    t: datetime  # the minute's start
    submitted: int
    finished: int  # succeeded in this minute
    failed: int
    cancelled: int
    runs_per_s: float  # (finished + failed) / 60
    p50_ms: float | None  # queued-to-finished latency of the minute's succeeded runs
    p99_ms: float | None
    error_rate: float | None  # failed / (finished + failed); None when none ended
    queue_depth: int | None  # the deepest the sweep leader sampled; None: no sample


class FleetOut(BaseModel):
    now: datetime
    queue_depth: int  # messages waiting in the queue now
    queued_runs: int  # runs recorded as queued (waiting for a turn included)
    running_runs: int
    workers: list[WorkerOut]
    dead_letters: int  # failed with exhausted_retries: GET /v1/runs?status=failed&...
    series: list[FleetMinute]  # one per minute of the window, oldest first


@router.get("/fleet", response_model=FleetOut)
async def get_fleet(
    db: Db,
    state: State,
    minutes: Annotated[int, Query(ge=1, le=1440, description="the window, in minutes")] = 60,
) -> FleetOut:
    """Queue depth, workers alive, dead letters, and per-minute throughput and latency."""
    view = await fleet_service.fleet_view(db, state.redis, state.settings, minutes=minutes)
    return FleetOut(
        now=view.now,
        queue_depth=view.queue_depth,
        queued_runs=view.queued_runs,
        running_runs=view.running_runs,
        workers=[WorkerOut(**w) for w in view.workers],
        dead_letters=view.dead_letters,
        series=[FleetMinute(**m) for m in view.series],
    )
