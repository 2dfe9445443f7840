"""What a worker process holds: one event loop in a thread, pools, caches.

Celery's thread pool hands each task to a thread that only waits; all I/O of
every run in flight (database, Redis, LLM calls) happens on this one asyncio
loop, so a process keeps hundreds of LLM calls in flight on one core.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from celery import Celery
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flows.runtime import FlowCache
from shared.db import create_engine, session_factory
from shared.redis_batch import RedisBatcher
from shared.settings import Settings
from worker.deliveries import HeldRuns

T = TypeVar("T")


@dataclass
class WorkerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # A pool whose statements commit by themselves (shared.db.create_engine): for the
    # writes that are one statement, most finishes.
    statements: AsyncEngine
    # Claims and lease renewals: their commits do not wait for the disk (shared.db). A
    # claim a database crash undoes leaves the run queued (or its old lease to expire):
    # this worker's finish then matches no row and records nothing, and the sweep runs it
    # again; a result is never acknowledged before its own durable commit.
    leases: AsyncEngine
    redis: Redis
    celery: Celery
    flows: FlowCache
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    in_flight: set[str] = field(default_factory=set)
    # Received (delivered by the broker) and not finished with: worker/deliveries.py.
    held: HeldRuns = field(default_factory=HeldRuns)
    events: RedisBatcher = field(init=False)  # run events and cancel flags, batched

    def __post_init__(self) -> None:
        self.events = RedisBatcher(self.redis)

    async def close_pools(self) -> None:
        await self.engine.dispose()
        await self.statements.dispose()
        await self.leases.dispose()


class LoopThread:
    """An asyncio loop on a daemon thread; Celery threads submit coroutines and wait."""

    def __init__(self) -> None:
        # uvloop where installed: cheaper socket I/O for hundreds of runs in flight.
        try:
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:
            self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="flowfleet-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


def build_context(settings: Settings, celery: Celery) -> WorkerContext:
    """Pools sized for the concurrency; no database connection is held while an LLM answers."""
    # The hot writes go through `statements` (finishes) and `leases` (claims, renewals), half
    # the size each: under load a busy loop holds a connection until it reads the reply, so
    # a claim pool of a quarter queued claims behind each other. The transactional pool
    # serves the rest (a finish with its session's turns, flow reads, the sweep) with a
    # quarter, so the process's connections stay near 1.25 pools'.
    half, quarter = max(2, settings.db_pool_size // 2), max(2, settings.db_pool_size // 4)
    engine = create_engine(settings, pool_size=quarter, pre_ping=False)
    return WorkerContext(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        statements=create_engine(settings, pool_size=half, pre_ping=False, autocommit=True),
        leases=create_engine(
            settings,
            pool_size=half,
            pre_ping=False,
            autocommit=True,
            durable=False,
        ),
        redis=Redis.from_url(
            settings.redis_url,
            socket_timeout=5,
            socket_connect_timeout=3,
        ),
        celery=celery,
        flows=FlowCache(settings.flows_dir, settings.compiled_cache_size),
    )
