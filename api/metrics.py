"""Request ids, X-Served-By, request metrics, and the Prometheus endpoint with queue depth."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import anyio
import redis
import structlog
from fastapi import APIRouter, Response
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import ADMIN, requires
from shared import telemetry
from shared.fleet import PRIORITY_SUFFIXES
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS, QUEUE_DEPTH_METRIC
from shared.settings import Settings

# Scrapers inside the cluster read it without a key unless metrics_public is off.
router = APIRouter(tags=["health"], dependencies=[requires(ADMIN, open_when="metrics_public")])
# A caller's request id is echoed only when it is a sane token, never arbitrary bytes in logs.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class ObservabilityMiddleware:
    """Binds the request id, answers with it and X-Served-By, and records request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        extra = [(b"x-request-id", request_id.encode()), (b"x-served-by", served_by_bytes())]
        status = 500
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}
        with (
            structlog.contextvars.bound_contextvars(request_id=request_id),
            telemetry.span(f"{scope['method']} {scope['path']}", carrier),
        ):
            try:
                await self.app(scope, receive, send_with_headers)
            finally:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = scope["method"]
                HTTP_REQUESTS.labels(method, route, str(status)).inc()
                HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


def served_by_bytes() -> bytes:
    return telemetry.served_by().encode()


class QueueDepthCollector(Collector):
    """LLEN of the Celery queue list(s), read from Redis when Prometheus scrapes."""

    def __init__(self, settings: Settings) -> None:
        self.queue = settings.queue_name
        self.client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            QUEUE_DEPTH_METRIC,
            "Messages waiting in the run queue (Redis list length).",
            labels=["queue"],
        )
        try:
            pipe = self.client.pipeline(transaction=False)
            for suffix in PRIORITY_SUFFIXES:
                pipe.llen(self.queue + suffix)
            depth = sum(int(n) for n in pipe.execute())
        except redis.RedisError:
            return  # no sample rather than a wrong one; the alert on absent() catches it
        family.add_metric([self.queue], depth)
        yield family


_collector: QueueDepthCollector | None = None


def install_queue_collector(settings: Settings) -> None:
    """Register the queue-depth collector once per process (the latest settings win)."""
    global _collector
    if _collector is not None:
        REGISTRY.unregister(_collector)
    _collector = QueueDepthCollector(settings)
    REGISTRY.register(_collector)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus exposition of this replica's metrics and the queue depth."""
    # The queue collector uses a blocking Redis client: scrape off the event loop.
    body = await anyio.to_thread.run_sync(generate_latest, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
