"""The ingest ledger on a real database (the migrated schema, SQLite file): one builder per
key, the others wait; a dead builder's lease is taken over; an abandoned build is redone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.ingest_ledger import IngestBusy, IngestTicket, SqlLedger
from shared.db import create_engine
from shared.migrate import upgrade
from shared.models import RagIngest
from shared.settings import Settings

TICKET = IngestTicket(key="k" * 64, owner="owner", flow_id="flow", collection="ff-owner-c")


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await asyncio.to_thread(upgrade, settings)
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


async def _status(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return (
            await conn.execute(select(RagIngest.status).where(RagIngest.key == TICKET.key))
        ).scalar()


async def test_one_builder_others_wait_then_find_it_ready(engine: AsyncEngine) -> None:
    first = SqlLedger(engine, "worker-1", poll_s=0.02)
    second = SqlLedger(engine, "worker-2", poll_s=0.02)
    build = await first.claim(TICKET)
    assert build is not None
    assert await _status(engine) == "building"
    waiting = asyncio.create_task(second.claim(TICKET))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # the key is being built elsewhere: it waits
    await build.finish(12)
    assert await asyncio.wait_for(waiting, 5) is None  # ready: nothing to build
    assert await _status(engine) == "ready"
    assert await first.claim(TICKET) is None


async def test_a_dead_builders_lease_is_taken_over(engine: AsyncEngine) -> None:
    dead = SqlLedger(engine, "worker-dead", lease_s=0.3)
    build = await dead.claim(TICKET)
    assert build is not None
    build._stop()  # type: ignore[attr-defined]  # the process died: no more renewals
    heir = SqlLedger(engine, "worker-heir", poll_s=0.05)
    taken = await asyncio.wait_for(heir.claim(TICKET), 5)
    assert taken is not None
    await taken.finish(3)
    assert await _status(engine) == "ready"


async def test_an_abandoned_build_is_redone_and_a_long_wait_says_so(engine: AsyncEngine) -> None:
    ledger = SqlLedger(engine, "worker-1")
    build = await ledger.claim(TICKET)
    assert build is not None
    await build.abandon()  # the ingest failed: the next run builds it
    assert await _status(engine) is None
    again = await ledger.claim(TICKET)
    assert again is not None
    impatient = SqlLedger(engine, "worker-2", wait_s=0.2, poll_s=0.05)
    with pytest.raises(IngestBusy, match="still being built"):
        await impatient.claim(TICKET)
    await again.finish(1)
