"""Ingest once: which content-addressed ingests are done, and the lock while one is built.

A key names one ingest (owner, collection, the ingest half's settings and files, the
embedding model: ``flows.langflow.rag_plan``). ``claim`` answers ``None`` when the key is
ready (nothing to do) or a ``Build`` the caller must ``finish`` or ``abandon``; while
another worker builds the key, it waits for it (bounded). The worker installs the
database ledger (the ``rag_ingests`` table: the row is the lock, its lease lets another
worker take over from a dead builder); without one, a process-local ledger serves
(in-process tests, one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.models import RagIngest, utcnow


class IngestBusy(RuntimeError):
    """Another worker is still building the index this run needs."""


@dataclass(frozen=True)
class IngestTicket:
    """One ingest: its key and where its chunks go."""

    key: str
    owner: str
    flow_id: str
    collection: str


class Build(Protocol):
    """The right (and duty) to build one ingest."""

    async def finish(self, chunks: int) -> None: ...

    async def abandon(self) -> None: ...


class IngestLedger(Protocol):
    async def claim(self, ticket: IngestTicket) -> Build | None: ...


class MemoryLedger:
    """Process-local: a set of ready keys and a lock per key being built."""

    def __init__(self) -> None:
        self.ready: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def claim(self, ticket: IngestTicket) -> Build | None:
        lock = self._locks.setdefault(ticket.key, asyncio.Lock())
        await lock.acquire()
        if ticket.key in self.ready:
            lock.release()
            return None
        return _MemoryBuild(self, ticket.key, lock)


@dataclass
class _MemoryBuild:
    ledger: MemoryLedger
    key: str
    lock: asyncio.Lock

    async def finish(self, chunks: int) -> None:
        self.ledger.ready[self.key] = chunks
        self.lock.release()

    async def abandon(self) -> None:
        self.lock.release()


class SqlLedger:
    """The ``rag_ingests`` table: portable (PostgreSQL and SQLite), no advisory locks."""

    def __init__(
        self,
        engine: AsyncEngine,
        holder: str,
        *,
        lease_s: float = 60.0,
        wait_s: float = 300.0,
        poll_s: float = 0.2,
    ) -> None:
        self.engine = engine
        self.holder = holder
        self.lease_s = lease_s
        self.wait_s = wait_s
        self.poll_s = poll_s

    async def claim(self, ticket: IngestTicket) -> Build | None:
        deadline = time.monotonic() + self.wait_s
        while True:
            now = utcnow()
            lease = now + timedelta(seconds=self.lease_s)
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(
                        insert(RagIngest).values(
                            key=ticket.key,
                            owner=ticket.owner,
                            flow_id=ticket.flow_id,
                            collection=ticket.collection,
                            status="building",
                            chunks=0,
                            builder=self.holder,
                            lease_expires_at=lease,
                            created_at=now,
                        )
                    )
                return self._build(ticket.key)
            except IntegrityError:
                pass
            async with self.engine.begin() as conn:
                row = (
                    await conn.execute(
                        select(RagIngest.status, RagIngest.lease_expires_at).where(
                            RagIngest.key == ticket.key
                        )
                    )
                ).first()
                if row is not None and row.status == "ready":
                    return None
                if row is not None and row.lease_expires_at and row.lease_expires_at < now:
                    # The builder died: take its lease over (one taker wins the UPDATE).
                    taken = await conn.execute(
                        update(RagIngest)
                        .where(
                            RagIngest.key == ticket.key,
                            RagIngest.status == "building",
                            RagIngest.lease_expires_at == row.lease_expires_at,
                        )
                        .values(builder=self.holder, lease_expires_at=lease)
                    )
                    if taken.rowcount == 1:
                        return self._build(ticket.key)
            if time.monotonic() > deadline:
                raise IngestBusy(
                    f"the index for collection {ticket.collection!r} is still being built by "
                    "another run; try again shortly"
                )
            await asyncio.sleep(self.poll_s)

    def _build(self, key: str) -> _SqlBuild:
        build = _SqlBuild(self, key)
        build.renewing = asyncio.ensure_future(build.renew())
        return build


@dataclass
class _SqlBuild:
    ledger: SqlLedger
    key: str
    renewing: asyncio.Future[None] | None = None

    async def renew(self) -> None:
        # A long ingest keeps its lease; a dead process stops renewing and loses it.
        while True:
            await asyncio.sleep(self.ledger.lease_s / 3)
            with contextlib.suppress(Exception):
                async with self.ledger.engine.begin() as conn:
                    await conn.execute(
                        update(RagIngest)
                        .where(RagIngest.key == self.key, RagIngest.builder == self.ledger.holder)
                        .values(lease_expires_at=utcnow() + timedelta(seconds=self.ledger.lease_s))
                    )

    def _stop(self) -> None:
        if self.renewing is not None:
            self.renewing.cancel()

    async def finish(self, chunks: int) -> None:
        self._stop()
        async with self.ledger.engine.begin() as conn:
            await conn.execute(
                update(RagIngest)
                .where(RagIngest.key == self.key)
                .values(status="ready", chunks=chunks, lease_expires_at=None, finished_at=utcnow())
            )

    async def abandon(self) -> None:
        self._stop()
        async with self.ledger.engine.begin() as conn:
            await conn.execute(
                delete(RagIngest).where(
                    RagIngest.key == self.key,
                    RagIngest.status == "building",
                    RagIngest.builder == self.ledger.holder,
                )
            )


_ledger: IngestLedger = MemoryLedger()


def set_ingest_ledger(ledger: IngestLedger) -> None:
    """Install the process's ledger (the worker installs the database one)."""
    global _ledger
    _ledger = ledger


def ingest_ledger() -> IngestLedger:
    """The process's ledger."""
    return _ledger
