"""The FastAPI application: validate, record, enqueue, answer; never runs a flow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from redis.asyncio import BlockingConnectionPool, Redis

from api import console, metrics, problems
from api.auth import KeyCache, guard
from api.edge import EdgeMiddleware
from api.limits import BodyLimitMiddleware
from api.ratelimit import QueueGauge, RateLimiter, capped
from api.routes import (
    events,
    files,
    fleet,
    flows,
    health,
    keys,
    langflow_compat,
    openai_compat,
    retention,
    runs,
    schedules,
    sessions,
    steps,
    triggers,
)
from api.run_writer import RunWriter
from api.services.flows import refresh_flow_refs, save_definition
from api.state import AppState
from flows.definitions import load_dir
from shared.db import create_engine, session_factory, transaction
from shared.gc_tuning import tune_gc
from shared.logging import configure_logging, error_text, get_logger
from shared.models import SYSTEM, Flow
from shared.queue import make_celery
from shared.settings import Settings, get_settings
from shared.telemetry import init_tracing

log = get_logger("api")


async def sync_flows_dir(state: AppState) -> None:
    """Register the flows directory's definitions as shared flows (idempotent per replica).

    An id a key already uploaded under stays that key's: the directory never takes it over.
    """
    definitions, failed = load_dir(state.settings.flows_dir)
    for name, error in failed.items():
        log.error("flows.invalid_file", file=name, problems=[p.as_json() for p in error.problems])
    async with transaction(state.sessions) as session:
        for defn in definitions:
            taken = await session.get(Flow, defn.id)
            if taken is not None and taken.owner != SYSTEM:
                log.error("flows.id_taken", flow_id=defn.id, detail="a key owns this id; rename")
                continue
            await save_definition(session, defn, origin="dir", owner=None)
    log.info("flows.loaded", count=len(definitions), directory=str(state.settings.flows_dir))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    init_tracing(settings, "api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        # The shared run writer's INSERTs are one statement each: they commit by themselves.
        # One write is on the wire at a time, so two connections serve it; no pre-ping (a
        # round trip per write): a connection PostgreSQL dropped fails one batch with 503,
        # and the pool reconnects for the next.
        writes = create_engine(settings, pool_size=2, pre_ping=False, autocommit=True)
        redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3)
        sessions = session_factory(engine)
        state = AppState(
            settings=settings,
            engine=engine,
            sessions=sessions,
            redis=redis,
            celery=make_celery(settings, "flowfleet-api"),
            key_cache=KeyCache(settings.key_cache_s),
            rate_limiter=RateLimiter(redis, settings),
            queue_gauge=QueueGauge(),
            run_writer=RunWriter(session_factory(writes), redis, settings),
            redis_blocking=Redis(
                connection_pool=BlockingConnectionPool.from_url(
                    settings.redis_url,
                    max_connections=settings.redis_blocking_connections,
                    timeout=5,  # waiting for a free connection, then 503
                    socket_timeout=None,  # reads block as long as XREAD BLOCK says
                    socket_connect_timeout=3,
                )
            ),
        )
        app.state.flowfleet = state
        if not settings.auth_on:
            log.warning(
                "api.auth_disabled",
                detail="every caller is an anonymous admin; set FLOWFLEET_AUTH_ENABLED=true "
                "or FLOWFLEET_ENV=production before exposing this API",
            )
        try:
            await sync_flows_dir(state)
        except Exception as exc:
            # Start anyway: readiness reports the database, and the next start syncs again.
            log.error("flows.sync_failed", error=error_text(exc))
        refresher = asyncio.create_task(_keep_submit_caches_fresh(state))
        tune_gc()
        try:
            yield
        finally:
            refresher.cancel()
            await state.redis.aclose()
            await state.redis_blocking.aclose(close_connection_pool=True)
            await engine.dispose()
            await writes.dispose()

    app = FastAPI(
        title="flowfleet",
        version="0.1.0",
        summary="Run LangFlow flows in production behind a queue.",
        lifespan=lifespan,
        dependencies=[Depends(guard)],
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        paths=files.body_limits(settings),
    )
    app.add_middleware(EdgeMiddleware, settings=settings)  # Host, NUL in the URL
    app.add_middleware(metrics.ObservabilityMiddleware)  # outermost: sees every answer
    if settings.metrics_enabled:
        metrics.install_queue_collector(settings)
        app.include_router(metrics.router)
    problems.install(app)
    for module in (
        runs,
        steps,
        events,
        openai_compat,
        langflow_compat,
        triggers,
        flows,
        schedules,
        sessions,
        files,
        keys,
        fleet,
        retention,
        health,
    ):
        app.include_router(module.router)
    console.mount(app)  # the web console's static files (api/console)
    return app


async def _keep_submit_caches_fresh(state: AppState, every_s: float = 0.5) -> None:
    """Refresh the queue counts and flow versions that submits read, twice per their TTL.

    Both are cached for a second; refreshed here, a submit at low load never pays their
    two queries (a transaction's worth of round trips) in its latency. Should this loop
    stall, the caches expire and submits read inline again.
    """
    while True:
        await asyncio.sleep(every_s)
        try:
            async with state.sessions() as session:
                if capped(state.settings):
                    await state.queue_gauge.refresh(session)  # only read when a cap is set
                await refresh_flow_refs(session)
        except Exception as exc:  # the database is away: requests will say so
            log.debug("caches.refresh_failed", error=error_text(exc))
