"""Schedules and triggers, the half both sides need (docs/schedules.md).

- Cron: when a schedule is next due (croniter; 5 fields, or 6 with seconds first), in
  its time zone.
- Firing: the scheduler (worker/scheduler.py, one leader) calls ``fire_due``. Each due
  schedule is claimed by moving ``next_fire_at`` on with a conditional UPDATE (``WHERE
  next_fire_at = <the due time read>``) in the transaction that inserts its run: two
  schedulers, or one restarted, cannot both fire a due time, and a crash leaves either
  both (the claim and the run) or neither. Times are the database's clock.
- Missed firings (every scheduler down, a long pause of the leader): the earliest missed
  due time fires once, late, and the next due time is the first one after now: no burst.
- A firing creates an ordinary run under the rules that still apply when it fires: the
  flow exists and is the one the schedule was made for, and the queue caps
  (shared/queue_caps.py, the same rule the submit service applies). Sizes, tweaks and the
  input were checked by the submit service's checks when the schedule was made or changed.
  A firing that breaks a rule makes no run; ``last_error`` says why.
- Trigger secrets: derived, never stored (``trigger_secret``).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import transaction
from shared.db_clock import now_plus
from shared.errors import FlowfleetError, FlowNotFound, InvalidRequest
from shared.logging import error_text, get_logger
from shared.models import Flow, Run, Schedule
from shared.queue import publish_runs
from shared.queue_caps import capped, check_caps, count_queued
from shared.run_status import RunStatus
from shared.settings import Settings
from shared.webhooks import signature

log = get_logger("shared.schedules")


# Cron -----------------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    """The IANA time zone; InvalidRequest (422) when there is none of that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Paris'",
            field="timezone",
        ) from exc


def check_cron(expression: str) -> str:
    """The expression if croniter reads it (5 fields, or 6 with seconds first); else 422."""
    fields = expression.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(
        expression, second_at_beginning=len(fields) == 6
    ):
        raise InvalidRequest(
            f"cron {expression!r} is not a cron expression: 5 fields (minute hour day month "
            "weekday), or 6 with seconds first ('*/30 * * * * *')",
            field="cron",
        )
    next_due(expression, "UTC", datetime.now(UTC))  # one that is never due (31 February)
    return expression


def next_due(expression: str, timezone: str, after: datetime) -> datetime:
    """The first due time strictly after ``after``, in UTC (the zone rules its wall clock)."""
    local = after.astimezone(zone(timezone))
    fields = len(expression.split())
    try:
        it = croniter(expression, local, second_at_beginning=fields == 6)
        return it.get_next(datetime).astimezone(UTC)  # type: ignore[no-any-return]
    except CroniterError as exc:  # e.g. "0 0 31 2 *": croniter finds no date
        raise InvalidRequest(f"cron {expression!r} is never due ({exc})", field="cron") from exc


# Firing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """What one claimed due time became: a run, or the reason it made none."""

    schedule_id: str
    due: datetime
    run_id: str | None
    error: str | None = None


async def db_now(session: AsyncSession) -> datetime:
    """The database's current time (UTC)."""
    value = await session.scalar(select(now_plus(0)))
    assert value is not None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def fire_due(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings, limit: int = 100
) -> list[Firing]:
    """Fire every schedule due now (at most ``limit``), each in its own transaction."""
    async with sessions() as session:
        due = list(
            (
                await session.execute(
                    select(Schedule.id, Schedule.next_fire_at)
                    .where(Schedule.paused.is_(False), Schedule.next_fire_at <= now_plus(0))
                    .order_by(Schedule.next_fire_at)
                    .limit(limit)
                )
            ).all()
        )
    firings: list[Firing] = []
    for schedule_id, due_at in due:
        try:
            firing = await _fire(sessions, settings, schedule_id, due_at)
        except Exception as exc:  # one schedule's failure must not stop the others firing
            log.warning("schedule.fire_failed", schedule_id=schedule_id, error=error_text(exc))
            continue
        if firing is not None:
            firings.append(firing)
    queued: list[tuple[str, dict[str, str]]] = [(f.run_id, {}) for f in firings if f.run_id]
    if queued:
        try:
            await publish_runs(redis, settings, queued)
        except Exception as exc:
            # The rows are committed and queued: the sweep re-enqueues a queued run whose
            # message was lost (worker/maintenance.py), so the firing is late, not lost.
            log.warning("schedules.enqueue_failed", runs=len(queued), error=error_text(exc))
    return firings


async def _fire(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    schedule_id: str,
    due_at: datetime,
) -> Firing | None:
    """Claim one due time and create its run; None when another scheduler claimed it."""
    async with transaction(sessions) as session:
        schedule = await session.get(Schedule, schedule_id)
        if schedule is None or schedule.paused or schedule.next_fire_at != due_at:
            return None
        now = await db_now(session)
        # After an outage the next due time is the first one after now: one late run, no burst.
        try:
            following = next_due(schedule.cron, schedule.timezone, max(now, due_at))
        except InvalidRequest as exc:  # never due again (a zone withdrawn, a date that ends)
            schedule.paused, schedule.last_error = True, f"paused: {exc}"
            return Firing(schedule_id, due_at, None, exc.code)
        claimed = await session.execute(
            update(Schedule)
            .where(
                Schedule.id == schedule_id,
                Schedule.next_fire_at == due_at,
                Schedule.paused.is_(False),
            )
            .values(next_fire_at=following, last_fired_at=due_at, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None  # another scheduler fired this due time
        try:
            run = await _new_run(session, settings, schedule, due_at, now)
        except FlowfleetError as exc:
            await _record(session, schedule_id, run_id=None, error=f"{exc.code}: {exc}")
            log.warning("schedule.skipped", schedule_id=schedule_id, due=due_at, code=exc.code)
            return Firing(schedule_id, due_at, None, exc.code)
        session.add(run)
        await _record(session, schedule_id, run_id=run.id, error=None)
    log.info("schedule.fired", schedule_id=schedule_id, run_id=run.id, due=due_at.isoformat())
    return Firing(schedule_id, due_at, run.id)


async def _record(
    session: AsyncSession, schedule_id: str, *, run_id: str | None, error: str | None
) -> None:
    await session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id)
        .values(last_run_id=run_id, last_error=error)
        .execution_options(synchronize_session=False)
    )


async def _new_run(
    session: AsyncSession, settings: Settings, schedule: Schedule, due_at: datetime, now: datetime
) -> Run:
    """The firing's run, after the rules that apply at firing time."""
    flow = await session.get(Flow, schedule.flow_id)
    if flow is None or flow.owner != schedule.flow_owner:
        raise FlowNotFound(f"flow {schedule.flow_id!r} no longer exists; pause or delete this")
    if capped(settings):
        queued = await count_queued(session, flow_id=flow.id, owner=schedule.owner)
        check_caps(settings, queued, flow_id=flow.id)
    return Run(
        id=str(uuid.uuid4()),
        flow_id=flow.id,
        flow_version=flow.current_version,
        # No session of its own: each firing starts a fresh conversation.
        session_id=schedule.session_id or f"schedule:{schedule.id}:{int(due_at.timestamp())}",
        owner=schedule.owner,
        input=schedule.input,
        tweaks=schedule.tweaks or {},
        meta={
            **(schedule.meta or {}),
            "schedule_id": schedule.id,
            "scheduled_for": due_at.isoformat(),
        },
        status=RunStatus.QUEUED,
        attempts=0,
        cached=False,
        created_at=now,
    )


# Trigger secrets -------------------------------------------------------------------------------


def _trigger_key(settings: Settings) -> bytes:
    key = settings.trigger_secret_key or settings.webhook_secret
    return key.get_secret_value().encode()


def trigger_secret(settings: Settings, flow_id: str, generation: int) -> str:
    """A flow's trigger secret: HMAC of the server's key over the flow id and generation.

    Derived, so the database never holds it (HMAC needs the secret itself, so a stored hash
    could not check a signature; a stored secret would sign for anyone who reads the table).
    A new generation (issuing again) makes a new secret and retires the old one.
    """
    message = f"flowfleet-trigger:{flow_id}:{generation}".encode()
    return "fft_" + hmac.new(_trigger_key(settings), message, hashlib.sha256).hexdigest()


def verify_trigger(
    settings: Settings,
    flow_id: str,
    generation: int,
    *,
    timestamp: str,
    body: bytes,
    header: str,
    now: float,
) -> str | None:
    """Why a signed trigger is refused, or None when the signature and timestamp are good.

    The scheme is the outgoing webhooks' (shared/webhooks.py): ``sha256=<hex HMAC(secret,
    f"{timestamp}.{body}")>``, the timestamp within ``trigger_max_skew_s`` of now.
    """
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "X-Flowfleet-Timestamp is not unix seconds"
    if abs(now - sent_at) > settings.trigger_max_skew_s:
        return (
            f"X-Flowfleet-Timestamp is more than {settings.trigger_max_skew_s} s from the "
            "server's clock (a replay, or a wrong clock)"
        )
    expected = signature(trigger_secret(settings, flow_id, generation), timestamp, body)
    if not hmac.compare_digest(expected, header):
        return "the signature does not match this flow's trigger secret and the body"
    return None
