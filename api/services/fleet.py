"""The fleet at a glance for the console: queue, workers, dead letters, per-minute series.

Everything comes from the service's own records: the runs table (submitted by
``created_at``; succeeded, failed and cancelled by ``finished_at``; latency is
``finished_at - created_at``, what a caller waited), Redis's queue lists and the sweep
leader's per-minute queue samples (shared/fleet.py), and the workers' heartbeats.

On PostgreSQL the minutes are aggregated in SQL (``percentile_cont``). The embedded
SQLite has no percentiles: the window's rows are read (at most ``SQLITE_ROWS_CAP``, the
newest) and aggregated here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import fleet
from shared.errors import ExhaustedRetries
from shared.models import Run
from shared.run_status import RunStatus
from shared.settings import Settings

SQLITE_ROWS_CAP = 100_000
# A run finishing in the window was created at most this long before it: bounds the scan
# to the (status, created_at) index. A run queued for longer is left out of the latencies.
OLDEST_RUN = timedelta(days=1)
_ENDS = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


@dataclass
class Minute:
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # SQLite only
    p50_ms: float | None = None
    p99_ms: float | None = None


@dataclass
class Fleet:
    now: datetime
    queue_depth: int
    queued_runs: int
    running_runs: int
    dead_letters: int
    workers: list[dict[str, Any]]
    series: list[dict[str, Any]]


def _minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


async def _minutes_postgres(session: AsyncSession, since: datetime) -> dict[datetime, Minute]:
    minutes: dict[datetime, Minute] = defaultdict(Minute)
    bucket = func.date_trunc("minute", Run.created_at)
    for at, n in await session.execute(
        select(bucket, func.count()).where(Run.created_at >= since).group_by(bucket)
    ):
        minutes[_minute(at)].submitted = int(n)
    done = func.date_trunc("minute", Run.finished_at)
    latency = func.extract("epoch", Run.finished_at - Run.created_at) * 1000
    ok = Run.status == RunStatus.SUCCEEDED
    query = (
        select(
            done,
            func.count().filter(ok),
            func.count().filter(Run.status == RunStatus.FAILED),
            func.count().filter(Run.status == RunStatus.CANCELLED),
            func.percentile_cont(0.5).within_group(latency).filter(ok),
            func.percentile_cont(0.99).within_group(latency).filter(ok),
        )
        .where(
            Run.status.in_(_ENDS),
            Run.created_at >= since - OLDEST_RUN,
            Run.finished_at >= since,
        )
        .group_by(done)
    )
    for at, succeeded, failed, cancelled, p50, p99 in await session.execute(query):
        m = minutes[_minute(at)]
        m.succeeded, m.failed, m.cancelled = int(succeeded), int(failed), int(cancelled)
        m.p50_ms = None if p50 is None else float(p50)
        m.p99_ms = None if p99 is None else float(p99)
    return minutes


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's ``percentile_cont``."""
    at = (len(ordered) - 1) * q
    low, high = math.floor(at), math.ceil(at)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


async def _minutes_python(session: AsyncSession, since: datetime) -> dict[datetime, Minute]:
    minutes: dict[datetime, Minute] = defaultdict(Minute)
    rows = await session.execute(
        select(Run.created_at, Run.finished_at, Run.status)
        .where(or_(Run.created_at >= since, Run.finished_at >= since))
        .order_by(Run.created_at.desc())
        .limit(SQLITE_ROWS_CAP)
    )
    for created, finished, status in rows:
        if created >= since:
            minutes[_minute(created)].submitted += 1
        if finished is None or finished < since:
            continue
        m = minutes[_minute(finished)]
        if status == RunStatus.SUCCEEDED:
            m.succeeded += 1
            m.latencies_ms.append((finished - created).total_seconds() * 1000)
        elif status == RunStatus.FAILED:
            m.failed += 1
        elif status == RunStatus.CANCELLED:
            m.cancelled += 1
    for m in minutes.values():
        if m.latencies_ms:
            ordered = sorted(m.latencies_ms)
            m.p50_ms, m.p99_ms = _percentile(ordered, 0.5), _percentile(ordered, 0.99)
    return minutes


async def _counts(session: AsyncSession) -> tuple[int, int, int]:
    """(queued, running, dead letters) from the runs table."""
    queued = await session.scalar(select(func.count()).where(Run.status == RunStatus.QUEUED))
    running = await session.scalar(select(func.count()).where(Run.status == RunStatus.RUNNING))
    dead = await session.scalar(
        select(func.count()).where(
            Run.status == RunStatus.FAILED, Run.error_code == ExhaustedRetries.code
        )
    )
    return int(queued or 0), int(running or 0), int(dead or 0)


async def fleet_view(
    session: AsyncSession, redis: Redis, settings: Settings, *, minutes: int
) -> Fleet:
    """The fleet now and over the last ``minutes`` minutes (the current one included)."""
    now = datetime.now(UTC)
    first = _minute(now) - timedelta(minutes=minutes - 1)
    postgres = session.get_bind().dialect.name == "postgresql"
    by_minute = await (_minutes_postgres if postgres else _minutes_python)(session, first)
    queued, running, dead = await _counts(session)
    depth = await fleet.queue_depth(redis, settings)
    samples = await fleet.queue_samples(redis, settings, first.timestamp())
    redis_now = await fleet.redis_now(redis)
    beats = await fleet.worker_beats(redis, settings)
    series = []
    for i in range(minutes):
        at = first + timedelta(minutes=i)
        m = by_minute.get(at, Minute())
        ended = m.succeeded + m.failed
        series.append(
            {
                "t": at,
                "submitted": m.submitted,
                "finished": m.succeeded,
                "failed": m.failed,
                "cancelled": m.cancelled,
                "runs_per_s": round(ended / 60, 4),
                "p50_ms": m.p50_ms,
                "p99_ms": m.p99_ms,
                "error_rate": None if ended == 0 else m.failed / ended,
                "queue_depth": samples.get(int(at.timestamp())),
            }
        )
    workers = [
        {
            "id": beat.id,
            "last_seen": datetime.fromtimestamp(beat.last_seen, UTC),
            "seconds_since_seen": round(max(0.0, redis_now - beat.last_seen), 3),
            # The sweep's rule (worker/deliveries.py): silent for a lease means dead.
            "alive": redis_now - beat.last_seen <= settings.lease_s,
            "held_runs": beat.held,
        }
        for beat in beats
    ]
    return Fleet(now, depth, queued, running, dead, workers, series)
