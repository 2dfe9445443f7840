"""Schedules fire once per due time: schedulers racing for one due time make one run, a
missed stretch makes one late run (not a burst), and with two worker processes the due
times of a 2-second schedule each get exactly one run, across a kill -9 of the leader.

The first tests call the firing code against a real PostgreSQL; the last runs the service
as processes (an API, two workers, llm-sim)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from sqlalchemy import delete, select

from shared.db import create_engine, session_factory, transaction
from shared.models import Flow, Run, Schedule
from shared.schedules import db_now, fire_due, next_due
from shared.settings import Settings
from tests.support.faults import isolated_stack
from tests.support.stack import (
    TEST_REDIS,
    Stack,
    base_env,
    fresh_postgres_database,
    migrate,
    postgres_available,
)

EVERY_2S = "*/2 * * * * *"


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    assert postgres_available(), "PostgreSQL at 127.0.0.1:5432 is needed"
    with fresh_postgres_database() as url:
        migrate(base_env(url, TEST_REDIS, "http://127.0.0.1:9"))
        yield url


def _settings(database_url: str, **extra: object) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=TEST_REDIS,
        redis_namespace=f"fftest-sched-{tag}:",
        queue_name=f"fftest-sched-{tag}",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def flow_and_schedule(database_url: str) -> AsyncIterator[tuple[Settings, str]]:
    """A flow and a 2-second schedule of it that was due a minute ago (every scheduler was
    down since)."""
    settings = _settings(database_url)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    flow_id = f"f-{uuid.uuid4().hex[:8]}"
    schedule_id = str(uuid.uuid4())
    async with transaction(sessions) as session:
        session.add(
            Flow(id=flow_id, kind="python", name=flow_id, current_version="v1", origin="upload")
        )
        now = await db_now(session)
        session.add(
            Schedule(
                id=schedule_id,
                owner="k1",
                flow_id=flow_id,
                flow_owner="system",
                cron=EVERY_2S,
                timezone="UTC",
                input="tick",
                tweaks={},
                meta={},
                paused=False,
                next_fire_at=next_due(EVERY_2S, "UTC", now - timedelta(seconds=60)),
            )
        )
    yield settings, schedule_id
    await engine.dispose()


async def _runs_of(sessions: object, schedule_id: str) -> list[Run]:
    async with sessions() as session:  # type: ignore[operator]
        runs = (await session.scalars(select(Run))).all()
    return [r for r in runs if (r.meta or {}).get("schedule_id") == schedule_id]


async def test_racing_schedulers_fire_a_missed_stretch_once_late_not_in_a_burst(
    flow_and_schedule: tuple[Settings, str],
) -> None:
    settings, schedule_id = flow_and_schedule
    # Four schedulers, each with its own engine (own connections), fire at the same moment.
    engines = [create_engine(settings) for _ in range(4)]
    client = redis.asyncio.Redis.from_url(TEST_REDIS)
    try:
        async with session_factory(engines[0])() as session:
            before = await session.get(Schedule, schedule_id)
            assert before is not None
            missed_from = before.next_fire_at
            started = await db_now(session)
        results = await asyncio.gather(
            *(fire_due(session_factory(e), client, settings) for e in engines)
        )
        fired = [f for firings in results for f in firings if f.schedule_id == schedule_id]
        dues = [f.due for f in fired]
        assert len(dues) == len(set(dues)), fired  # no due time twice
        # Thirty missed due times, one claim among four: the earliest, fired late. (On a slow
        # machine the race may outlast a due time after it: that one fires too, once.)
        missed = [f for f in fired if f.due < started]
        assert [f.due for f in missed] == [missed_from], fired
        runs = await _runs_of(session_factory(engines[0]), schedule_id)
        assert sorted(r.id for r in runs) == sorted(f.run_id for f in fired if f.run_id)
        runs = [r for r in runs if r.id == missed[0].run_id]
        assert runs[0].input == "tick"
        assert runs[0].status == "queued"
        assert runs[0].meta["scheduled_for"] == missed_from.isoformat()
        async with session_factory(engines[0])() as session:
            after = await session.get(Schedule, schedule_id)
            assert after is not None
            now = await db_now(session)
        # The next due time is the first after the firing: the rest of the stretch is skipped.
        assert started < after.next_fire_at <= now + timedelta(seconds=2)
        assert after.last_run_id in {f.run_id for f in fired}
        assert after.last_error is None
        # Asked again at once, nothing of the missed stretch is due any more.
        again = await fire_due(session_factory(engines[1]), client, settings)
        assert [f for f in again if f.schedule_id == schedule_id and f.due < started] == []
    finally:
        await client.aclose()
        for e in engines:
            await e.dispose()


async def test_a_firing_that_breaks_a_rule_makes_no_run_and_says_why(
    flow_and_schedule: tuple[Settings, str], database_url: str
) -> None:
    settings, schedule_id = flow_and_schedule
    capped = _settings(database_url, max_queued_per_flow=1)
    engine = create_engine(settings)
    sessions = session_factory(engine)
    client = redis.asyncio.Redis.from_url(TEST_REDIS)
    try:
        first = await fire_due(sessions, client, capped)  # one queued run: the flow's cap
        assert [f.run_id is not None for f in first if f.schedule_id == schedule_id] == [True]
        async with transaction(sessions) as session:  # due again now
            schedule = await session.get(Schedule, schedule_id)
            assert schedule is not None
            schedule.next_fire_at = await db_now(session) - timedelta(seconds=1)
        second = await fire_due(sessions, client, capped)
        assert [(f.run_id, f.error) for f in second if f.schedule_id == schedule_id] == [
            (None, "queue_full")
        ]
        async with transaction(sessions) as session:
            schedule = await session.get(Schedule, schedule_id)
            assert schedule is not None
            assert schedule.last_error is not None
            assert "queue_full" in schedule.last_error
            assert schedule.next_fire_at > await db_now(session)  # it moved on: no retry storm
            schedule.next_fire_at = await db_now(session) - timedelta(seconds=1)
            await session.execute(delete(Flow).where(Flow.id == schedule.flow_id))
        third = await fire_due(sessions, client, settings)
        assert [(f.run_id, f.error) for f in third if f.schedule_id == schedule_id] == [
            (None, "flow_not_found")
        ]
        assert len(await _runs_of(sessions, schedule_id)) == 1
    finally:
        await client.aclose()
        await engine.dispose()


def _scheduled_runs(client: httpx.Client, schedule_id: str) -> list[dict[str, object]]:
    items = client.get("/v1/runs", params={"flow_id": "prompt", "limit": 500}).json()["items"]
    return [r for r in items if r["metadata"].get("schedule_id") == schedule_id]


def _due(run: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(run["metadata"]["scheduled_for"]))  # type: ignore[index]


@pytest.mark.slow
def test_two_workers_fire_each_due_time_once_across_a_kill_9_of_the_leader(
    infra: dict[str, str], llm_sim: str
) -> None:
    with (
        isolated_stack(
            llm_sim,
            infra["redis_url"],
            workers=2,
            FLOWFLEET_SCHEDULER_TICK_S="0.2",
            FLOWFLEET_SCHEDULER_LOCK_S="2",
        ) as stack,
        stack.client() as client,
    ):
        created = client.post(
            "/v1/schedules", json={"flow_id": "prompt", "cron": EVERY_2S, "input": "tick"}
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        started = datetime.now(UTC)
        time.sleep(10)
        leader = _leader(stack)
        killed_at = datetime.now(UTC)
        leader.kill()  # SIGKILL: it holds the scheduler lock until the lock expires
        time.sleep(12)
        paused = client.patch(f"/v1/schedules/{schedule_id}", json={"paused": True})
        assert paused.status_code == 200
        assert paused.json()["paused"] is True
        paused_at = datetime.now(UTC)
        time.sleep(3)
        runs = _scheduled_runs(client, schedule_id)

    per_due = Counter(_due(r) for r in runs)
    twice = {due: n for due, n in per_due.items() if n > 1}
    assert twice == {}, f"due times fired more than once: {twice}"
    assert all(due.second % 2 == 0 and due.microsecond == 0 for due in per_due)
    # ~22 s of firing at one per 2 s, less a failover of at most the lock's 2 s plus a tick.
    window = (paused_at - started).total_seconds()
    assert len(per_due) >= window / 2 - 4, sorted(per_due)
    after_kill = [d for d in per_due if d > killed_at + timedelta(seconds=3)]
    assert len(after_kill) >= 3, "the surviving worker took over the schedule"
    # Paused: nothing due after the pause fired.
    assert all(d <= paused_at + timedelta(seconds=1) for d in per_due), sorted(per_due)
    # Each firing is an ordinary run of the flow with the schedule's input.
    assert {r["input"] for r in runs} == {"tick"}


def _leader(stack: Stack) -> object:
    """The worker process holding the scheduler lock (its worker id names it in its log)."""
    r = redis.Redis.from_url(stack.env["FLOWFLEET_REDIS_URL"])
    holder = r.get(stack.env["FLOWFLEET_REDIS_NAMESPACE"] + "scheduler-leader")
    assert holder is not None, "no worker leads the scheduler"
    worker_id = holder.decode()
    for proc in stack.workers:
        for line in proc.output().splitlines():
            if "worker.started" in line and json.loads(line).get("worker_id") == worker_id:
                return proc
    raise AssertionError(f"no worker process logged worker_id {worker_id}")
