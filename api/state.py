"""What the API process holds open for its lifetime, and the dependencies that hand it out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, cast

from celery import Celery
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.settings import Settings

if TYPE_CHECKING:
    from api.auth import KeyCache
    from api.ratelimit import QueueGauge, RateLimiter
    from api.run_writer import RunWriter


@dataclass
class AppState:
    """Everything the lifespan opens, built whole in one place (``api.app``): no field is
    filled in later, so none is ever None."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    celery: Celery
    # Blocking reads (XREAD BLOCK for SSE and wait) get their own pool, so many idle
    # subscribers never starve the short commands of other requests.
    redis_blocking: Redis
    key_cache: KeyCache
    rate_limiter: RateLimiter
    queue_gauge: QueueGauge
    run_writer: RunWriter


def app_state(request: Request) -> AppState:
    return request.app.state.flowfleet  # type: ignore[no-any-return]


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    return app_state(request)


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """A session per request; handlers commit what they change."""
    async with app_state(request).sessions() as session:
        yield session


class SessionOnDemand:
    """A request's session, made on its first use and closed at the end of the block.

    A submit's checks (flow version, queue counts, parsed tweaks) answer from this
    process's caches, and its run is written by the shared writer: most submits never
    touch a session. Making and closing one per request through a FastAPI ``yield``
    dependency costs a real share of a submit's CPU. Used as ``async with
    SessionOnDemand(state.sessions) as db``; ``db`` acts as the ``AsyncSession``.
    """

    __slots__ = ("_factory", "_session")

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        self._session: AsyncSession | None = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = self._factory()
        return getattr(self._session, name)

    async def __aenter__(self) -> AsyncSession:
        return cast(AsyncSession, self)

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()


State = Annotated[AppState, Depends(get_state)]
Db = Annotated[AsyncSession, Depends(get_db)]
