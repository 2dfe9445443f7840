"""Database engines and sessions: async SQLAlchemy on PostgreSQL (psycopg 3) or SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.settings import Settings


def create_engine(
    settings: Settings,
    *,
    pool_size: int | None = None,
    pre_ping: bool = True,
    autocommit: bool = False,
    durable: bool = True,
) -> AsyncEngine:
    """An async engine sized for this process's concurrency.

    ``autocommit``: each statement commits by itself (PostgreSQL; SQLite is unchanged). For
    writes that are one statement: psycopg sends BEGIN, the statement and COMMIT as three
    round trips, where one does (docs/architecture.md, "Measurements"). Its connections
    are a pool of their own, so no checkout switches a connection's mode and back. Code
    that commits (``engine.begin()``, ``transaction``) works unchanged on it, and on SQLite
    still commits.

    ``durable=False``: a commit returns before its WAL reaches the disk (PostgreSQL's
    ``synchronous_commit=off``), for writes whose loss in a database crash is recovered
    anyway, never for a result or an accepted run. What a commit shows other sessions is
    the same; a crash may undo its last ~0.6 s of such commits (three ``wal_writer_delay``),
    and any later durable commit makes them durable too.
    """
    if settings.is_sqlite:
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    size = pool_size or settings.db_pool_size
    return create_async_engine(
        settings.database_url,
        # Connections are held only for short transactions, never across an LLM call, so a
        # steady pool serves hundreds of runs; overflow connections are closed on return and
        # reopened on the next burst, a large share of CPU under load.
        pool_size=size,
        max_overflow=size // 4,
        # The worker turns this off: its claims and writes retry on a dropped connection.
        pool_pre_ping=pre_ping,
        pool_timeout=10,
        # Fail fast when PostgreSQL is unreachable instead of hanging a request.
        connect_args={
            "connect_timeout": 5,
            **({} if durable else {"options": "-c synchronous_commit=off"}),
        },
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the worker writes; the busy timeout rides out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on error."""
    async with factory() as session, session.begin():
        yield session
