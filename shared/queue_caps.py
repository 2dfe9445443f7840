"""The queue caps, one rule for every way a run is created (submits, schedule firings).

Overall and per flow: 503 ``queue_full``; the owner's share: 429 ``key_queue_full``.
The API checks them against its cached counts (api/ratelimit.py ``QueueGauge``); the
scheduler, which creates a run now and then, counts on the spot (``count_queued``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import KeyQueueFull, QueueFull
from shared.models import Run
from shared.run_status import RunStatus
from shared.settings import Settings


def capped(settings: Settings) -> bool:
    """Whether any queue cap is set (the queue is counted only then)."""
    return bool(
        settings.max_queued_runs or settings.max_queued_per_flow or settings.max_queued_per_key
    )


@dataclass(frozen=True)
class Queued:
    """Runs queued overall, of one flow, and of one owner."""

    total: int
    of_flow: int
    of_owner: int


def check_caps(settings: Settings, queued: Queued, *, flow_id: str, adding: int = 1) -> None:
    """Raise when ``adding`` more runs would pass the owner's share, or a cap."""
    if settings.max_queued_per_key and queued.of_owner + adding > settings.max_queued_per_key:
        raise KeyQueueFull(
            f"this key has {queued.of_owner} runs queued and its share is "
            f"{settings.max_queued_per_key} (FLOWFLEET_MAX_QUEUED_PER_KEY); "
            f"wait for some to finish before adding {adding} more",
            headers={"Retry-After": "5"},
        )
    if settings.max_queued_runs and queued.total + adding > settings.max_queued_runs:
        raise QueueFull(
            f"{queued.total} runs are queued (cap {settings.max_queued_runs}); retry later",
            headers={"Retry-After": "5"},
        )
    if settings.max_queued_per_flow and queued.of_flow + adding > settings.max_queued_per_flow:
        raise QueueFull(
            f"{queued.of_flow} runs of flow {flow_id!r} are queued "
            f"(cap {settings.max_queued_per_flow}); retry later",
            headers={"Retry-After": "5"},
        )


async def count_queued(session: AsyncSession, *, flow_id: str, owner: str) -> Queued:
    """Count now (one grouped query on the (status, created_at) index)."""
    rows = await session.execute(
        select(Run.flow_id, Run.owner, func.count())
        .where(Run.status == RunStatus.QUEUED)
        .group_by(Run.flow_id, Run.owner)
    )
    total = of_flow = of_owner = 0
    for flow, who, n in rows.all():
        total += int(n)
        of_flow += int(n) if flow == flow_id else 0
        of_owner += int(n) if who == owner else 0
    return Queued(total, of_flow, of_owner)
