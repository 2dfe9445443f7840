"""Retention deletes exactly what is past its age and nothing in flight, per owner, in
bounded batches, and only on the sweep's leader. Real rows, on PostgreSQL and on SQLite
(the embedded default)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine
from shared.models import RUNS
from shared.queue import make_celery
from shared.settings import Settings
from tests.support.stack import TEST_REDIS, migrated_database
from worker.context import build_context
from worker.maintenance import retain
from worker.retention import MESSAGES, POLICIES, STEPS, RetentionState, purge_expired

MARGIN = timedelta(minutes=2)  # "just inside" / "just outside" a boundary


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with migrated_database(request.param, tmp_path_factory.mktemp("retention")) as url:
        yield url


def _settings(database_url: str, **overrides: Any) -> Settings:
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": TEST_REDIS,
        "redis_namespace": f"fftest-retention-{tag}:",
        "queue_name": f"fftest-retention-{tag}",
        # The documented defaults, spelled out: the test does not follow a change of them.
        "retention_runs_days": 30,
        "retention_events_days": 30,
        "retention_messages_days": 90,
        "retention_dead_letters_days": 90,
        "retention_session_max_turns": None,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    db = create_engine(_settings(database_url))
    async with db.begin() as conn:  # each test starts from empty tables
        for table in (STEPS, MESSAGES, RUNS, POLICIES):
            await conn.execute(delete(table))
    try:
        yield db
    finally:
        await db.dispose()


def _ago(delta: timedelta) -> datetime:
    return datetime.now(UTC) - delta


async def _run(
    engine: AsyncEngine,
    age: timedelta,
    *,
    status: str = "succeeded",
    owner: str = "owner-a",
    session_id: str | None = None,
    error_code: str | None = None,
    steps: int = 0,
    turn: bool = False,
) -> str:
    """A run created ``age`` ago; ``steps`` recorded steps and (``turn``) its two messages,
    written at its creation time."""
    run_id = str(uuid.uuid4())
    at = _ago(age)
    async with engine.begin() as conn:
        await conn.execute(
            insert(RUNS).values(
                id=run_id,
                flow_id="prompt",
                flow_version="v1",
                owner=owner,
                session_id=session_id,
                input="hi",
                tweaks={},
                meta={},
                status=status,
                error_code=error_code,
                cached=False,
                attempts=1,
                created_at=at,
                finished_at=None if status in ("queued", "running") else at,
            )
        )
        for i in range(steps):
            await conn.execute(
                insert(STEPS).values(
                    run_id=run_id,
                    attempt=1,
                    kind="tool_call",
                    tool_call_id=f"c{i}",
                    name="tool",
                    data={},
                    created_at=at,
                )
            )
        if turn:
            assert session_id is not None
            for role in ("user", "assistant"):
                await conn.execute(
                    insert(MESSAGES).values(
                        session_id=session_id,
                        owner=owner,
                        run_id=run_id,
                        role=role,
                        content=f"{role} of {run_id}",
                        created_at=at,
                    )
                )
    return run_id


async def _run_ids(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(RUNS.c.id))).scalars())


async def _count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
        )


async def test_deletes_exactly_what_is_past_its_age_and_nothing_in_flight(
    engine: AsyncEngine, database_url: str
) -> None:
    day = timedelta(days=1)
    gone = {
        "old": await _run(engine, 30 * day + MARGIN, steps=2),
        "old_failed": await _run(engine, 31 * day, status="failed", error_code="flow_error"),
        "old_failed_no_code": await _run(engine, 31 * day, status="failed"),
        "old_cancelled": await _run(engine, 31 * day, status="cancelled"),
        "old_dead_letter": await _run(
            engine, 90 * day + MARGIN, status="failed", error_code="exhausted_retries"
        ),
        # A conversation past both ages: its run and both messages go.
        "old_turn": await _run(engine, 90 * day + MARGIN, session_id="s-old", turn=True),
    }
    kept = {
        "young": await _run(engine, 30 * day - MARGIN, steps=2),
        "old_running": await _run(engine, 40 * day, status="running", steps=1),
        "old_queued": await _run(engine, 400 * day, status="queued"),
        "dead_letter": await _run(
            engine, 90 * day - MARGIN, status="failed", error_code="exhausted_retries"
        ),
        # Past the runs' age, not the messages': the history (and the run it names) stays.
        "turn": await _run(engine, 31 * day, session_id="s-kept", turn=True),
        # Past every age, but its session has a run in flight that reads the history.
        "busy_turn": await _run(engine, 100 * day, session_id="s-busy", turn=True),
        "busy_next": await _run(engine, timedelta(0), status="queued", session_id="s-busy"),
    }

    counts = await purge_expired(engine, _settings(database_url))

    assert counts == {"runs": 6, "run_steps": 2, "session_messages": 2}
    assert await _run_ids(engine) == set(kept.values())
    assert await _count(engine, STEPS, STEPS.c.run_id == kept["young"]) == 2
    assert await _count(engine, STEPS, STEPS.c.run_id == kept["old_running"]) == 1
    assert await _count(engine, MESSAGES, MESSAGES.c.session_id == "s-kept") == 2
    assert await _count(engine, MESSAGES, MESSAGES.c.session_id == "s-busy") == 2
    assert await _count(engine, MESSAGES, MESSAGES.c.session_id == "s-old") == 0
    assert set(gone.values()).isdisjoint(await _run_ids(engine))
    # A second round finds nothing more.
    assert await purge_expired(engine, _settings(database_url)) == {
        "runs": 0,
        "run_steps": 0,
        "session_messages": 0,
    }


async def test_events_and_messages_have_ages_of_their_own(
    engine: AsyncEngine, database_url: str
) -> None:
    day = timedelta(days=1)
    run = await _run(engine, 5 * day + MARGIN, steps=3, session_id="s", turn=True)
    young = await _run(engine, 5 * day - MARGIN, steps=1, session_id="s2", turn=True)
    settings = _settings(database_url, retention_events_days=5, retention_messages_days=5)

    counts = await purge_expired(engine, settings)

    # Steps and messages past 5 days go; the runs (30 days) stay.
    assert counts == {"runs": 0, "run_steps": 3, "session_messages": 2}
    assert await _run_ids(engine) == {run, young}
    assert await _count(engine, STEPS, STEPS.c.run_id == young) == 1
    assert await _count(engine, MESSAGES, MESSAGES.c.run_id == young) == 2


async def test_an_owners_policy_overrides_the_settings(
    engine: AsyncEngine, database_url: str
) -> None:
    day = timedelta(days=1)
    async with engine.begin() as conn:
        await conn.execute(
            insert(POLICIES),
            [
                # Runs kept a day; messages forever (0), so its conversation runs stay too.
                {"owner": "short", "runs_days": 1, "messages_days": 0, "updated_at": _ago(day * 0)},
                # Everything forever; events follow the setting (NULL).
                {
                    "owner": "forever",
                    "runs_days": 0,
                    "dead_letters_days": 0,
                    "messages_days": 0,
                    "updated_at": _ago(day * 0),
                },
            ],
        )
    short_old = await _run(engine, day + MARGIN, owner="short")
    short_young = await _run(engine, day - MARGIN, owner="short")
    short_turn = await _run(engine, 200 * day, owner="short", session_id="s", turn=True)
    forever = await _run(engine, 400 * day, owner="forever", steps=1)
    default_old = await _run(engine, 31 * day, owner="someone")
    default_young = await _run(engine, 2 * day, owner="someone")

    counts = await purge_expired(engine, _settings(database_url))

    assert await _run_ids(engine) == {short_young, short_turn, forever, default_young}
    assert {short_old, default_old}.isdisjoint(await _run_ids(engine))
    # The forever owner's events follow the setting (30 days): its step went.
    assert counts == {"runs": 2, "run_steps": 1, "session_messages": 0}
    assert await _count(engine, MESSAGES, MESSAGES.c.owner == "short") == 2


async def test_a_session_keeps_exactly_its_last_turns(
    engine: AsyncEngine, database_url: str
) -> None:
    settings = _settings(database_url, retention_session_max_turns=3)
    long_runs = [
        await _run(engine, timedelta(minutes=10 - i), session_id="long", turn=True)
        for i in range(5)
    ]
    short_runs = [
        await _run(engine, timedelta(minutes=10 - i), session_id="short", turn=True)
        for i in range(2)
    ]
    # Over the cap too, but a run of it is queued: its history is left as it is.
    for i in range(5):
        await _run(engine, timedelta(minutes=10 - i), session_id="busy", turn=True)
    await _run(engine, timedelta(0), status="queued", session_id="busy")
    state = RetentionState()

    counts = await purge_expired(engine, settings, state=state)

    assert counts == {"runs": 0, "run_steps": 0, "session_messages": 4}
    async with engine.connect() as conn:
        kept = (
            await conn.execute(
                select(MESSAGES.c.run_id, MESSAGES.c.role)
                .where(MESSAGES.c.session_id == "long")
                .order_by(MESSAGES.c.id)
            )
        ).all()
    assert [tuple(row) for row in kept] == [
        (run_id, role) for run_id in long_runs[-3:] for role in ("user", "assistant")
    ]
    assert await _count(engine, MESSAGES, MESSAGES.c.session_id == "short") == 2 * len(short_runs)
    assert await _count(engine, MESSAGES, MESSAGES.c.session_id == "busy") == 10
    # The runs stay (30 days); a new turn takes the session over the cap again.
    newest = await _run(engine, timedelta(0), session_id="long", turn=True)
    assert await purge_expired(engine, settings, state=state) == {
        "runs": 0,
        "run_steps": 0,
        "session_messages": 2,
    }
    assert await _count(engine, MESSAGES, MESSAGES.c.run_id == long_runs[-3]) == 0
    assert await _count(engine, MESSAGES, MESSAGES.c.run_id == newest) == 2


async def test_batches_are_bounded(engine: AsyncEngine, database_url: str) -> None:
    for _ in range(35):
        await _run(engine, timedelta(days=31))
    young = await _run(engine, timedelta(days=1))
    deletes: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM RUNS"):
            deletes.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        counts = await purge_expired(engine, _settings(database_url), batch_size=10)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)

    assert counts["runs"] == 35
    assert len(deletes) == 4  # 10 + 10 + 10 + 5, each its own short transaction
    assert await _run_ids(engine) == {young}


async def test_only_the_leader_purges(engine: AsyncEngine, database_url: str) -> None:
    settings = _settings(database_url)
    leader = build_context(settings, make_celery(settings, "test-retention-a"))
    other = build_context(settings, make_celery(settings, "test-retention-b"))
    try:
        assert await retain(leader, RetentionState()) is not None  # takes the lead
        expired = await _run(engine, timedelta(days=31))

        assert await retain(other, RetentionState()) is None
        assert expired in await _run_ids(engine)

        counts = await retain(leader, RetentionState())
        assert counts is not None
        assert counts["runs"] == 1
        assert expired not in await _run_ids(engine)
    finally:
        for ctx in (leader, other):
            await ctx.redis.delete(settings.redis_key("sweep-leader"))
            await ctx.close_pools()
            await ctx.redis.aclose()
