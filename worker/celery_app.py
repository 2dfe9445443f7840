"""The worker's Celery app: a thread pool whose threads hand runs to one asyncio loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import structlog
from celery import Celery, Task, signals

from flows.models import set_limiter
from shared import telemetry
from shared.backend_limits import BackendLimiter
from shared.logging import configure_logging, get_logger
from shared.queue import RUN_TASK, make_celery
from shared.settings import get_settings
from worker.context import LoopThread, WorkerContext, build_context

settings = get_settings()
app: Celery = make_celery(settings, "flowfleet-worker")
app.conf.update(
    worker_pool="threads",
    worker_concurrency=settings.worker_concurrency,
    include=["worker.webhooks"],  # registers the webhook task
)
log = get_logger("worker")

_lock = threading.Lock()
_runtime: tuple[LoopThread, WorkerContext] | None = None


def runtime() -> tuple[LoopThread, WorkerContext]:
    """The process's loop and context, made on first use (never at import)."""
    global _runtime
    with _lock:
        if _runtime is None:
            loop = LoopThread()
            ctx = build_context(settings, app)
            _runtime = (loop, ctx)
            set_limiter(BackendLimiter(ctx.redis, settings, holder_prefix=ctx.worker_id))
            from worker.maintenance import maintain

            asyncio.run_coroutine_threadsafe(maintain(ctx), loop.loop)
            from worker.metrics import serve_metrics

            serve_metrics(settings, ctx.flows)
            log.info(
                "worker.started", worker_id=ctx.worker_id, concurrency=settings.worker_concurrency
            )
        return _runtime


@signals.worker_init.connect
def _on_worker_init(**_: Any) -> None:
    configure_logging(settings)
    telemetry.init_tracing(settings, "worker")


@signals.worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    runtime()


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    if _runtime is not None:
        loop, ctx = _runtime
        loop.run(ctx.engine.dispose(), timeout=5)
        loop.stop()


@app.task(name=RUN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_flow(self: Task, run_id: str) -> str:
    """Execute one run; the run id is the whole message."""
    loop, ctx = runtime()
    return loop.run(_traced_run(ctx, run_id, _task_headers(self)))


def _task_headers(task: Task) -> dict[str, Any]:
    # Protocol 2 merges custom headers into the request; older clients nest them.
    request = task.request
    nested = getattr(request, "headers", None) or {}
    keys = ("request_id", "traceparent", "tracestate")
    return {k: v for k in keys if (v := getattr(request, k, None) or nested.get(k))}


async def _traced_run(ctx: WorkerContext, run_id: str, headers: dict[str, Any]) -> str:
    """The run with its request id in every log line and its span under the submitting trace."""
    from worker.execute import execute_run

    # This coroutine is its own asyncio task, so the bound context stays with this run.
    structlog.contextvars.bind_contextvars(run_id=run_id, request_id=headers.get("request_id"))
    with telemetry.span("flowfleet.run", headers, run_id=run_id):
        return await execute_run(ctx, run_id)
