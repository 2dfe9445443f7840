"""A worker's context (pools, Redis, Celery) on a test database, for tests that call the
worker's functions directly instead of through a worker process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shared.queue import make_celery
from shared.settings import Settings
from tests.support.stack import TEST_REDIS
from worker.context import WorkerContext, build_context


@asynccontextmanager
async def worker_context(
    database_url: str, name: str, **settings: Any
) -> AsyncIterator[WorkerContext]:
    """A context on ``database_url`` with its own Redis namespace and queue (``name`` and a
    random tag, so runs never see each other's keys); its pools and Redis closed afterwards."""
    tag = uuid.uuid4().hex[:8]
    config = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=TEST_REDIS,
        redis_namespace=f"fftest-{name}-{tag}:",
        queue_name=f"fftest-{name}-{tag}",
        **settings,
    )
    context = build_context(config, make_celery(config, f"test-{name}"))
    try:
        yield context
    finally:
        await context.close_pools()
        await context.redis.aclose()
