"""The worker's Celery app: a thread pool whose threads hand runs to one asyncio loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import structlog
from celery import Celery, Task, signals

from flows.ingest_ledger import SqlLedger, set_ingest_ledger
from flows.models import close_http_clients, set_limiter
from shared import telemetry
from shared.backend_limits import BackendLimiter
from shared.gc_tuning import tune_gc
from shared.logging import configure_logging, get_logger
from shared.queue import RUN_TASK, enqueue_run, make_celery
from shared.settings import get_settings
from worker.admission import AdmissionGate
from worker.broker import transport_for
from worker.context import LoopThread, WorkerContext, build_context
from worker.shutdown import Drain

settings = get_settings()
app: Celery = make_celery(settings, "flowfleet-worker")
app.conf.update(
    broker_transport=transport_for(settings.redis_url),
    worker_pool="threads",
    worker_concurrency=settings.worker_concurrency,
    include=["worker.webhooks"],  # registers the webhook task
)
log = get_logger("worker")

_lock = threading.Lock()
_runtime: tuple[LoopThread, WorkerContext] | None = None
drain = Drain()
gate = AdmissionGate(settings.worker_concurrency)


def runtime() -> tuple[LoopThread, WorkerContext]:
    """The process's loop and context, made on first use (never at import)."""
    global _runtime
    with _lock:
        if _runtime is None:
            loop = LoopThread()
            ctx = build_context(settings, app)
            _runtime = (loop, ctx)
            set_limiter(BackendLimiter(ctx.redis, settings, holder_prefix=ctx.worker_id))
            set_ingest_ledger(
                SqlLedger(ctx.engine, ctx.worker_id, wait_s=settings.rag_ingest_wait_s)
            )
            from worker.maintenance import maintain

            asyncio.run_coroutine_threadsafe(maintain(ctx), loop.loop)
            asyncio.run_coroutine_threadsafe(gate.watch(), loop.loop)
            from worker.metrics import serve_metrics

            serve_metrics(settings, ctx.flows)
            tune_gc()
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


@signals.worker_shutting_down.connect
def _on_worker_shutting_down(**_: Any) -> None:
    # SIGTERM: Celery stops consuming and waits for running tasks; we bound that wait.
    loop, ctx = _runtime if _runtime is not None else (None, None)
    drain.begin(loop, ctx, settings.shutdown_grace_s)
    gate.wake_all()  # runs still waiting for a place go back to the queue
    log.info("worker.draining", in_flight=len(drain.in_flight()), grace_s=settings.shutdown_grace_s)


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    # Runs after the pool has joined, i.e. after every run finished or was handed back;
    # only then is it safe to close the pools and stop the loop under them.
    drain.cancel_timer()
    if _runtime is not None:
        loop, ctx = _runtime
        if in_flight := drain.in_flight():  # a cold shutdown cut the wait short
            drain.hand_back(loop, ctx)
            log.warning("worker.stopped_with_runs", count=len(in_flight))
        loop.run(ctx.close_pools(), timeout=5)
        loop.run(close_http_clients(), timeout=5)
        loop.stop()


@app.task(name=RUN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_flow(self: Task, run_id: str) -> str:
    """Execute one run; the run id is the whole message."""
    loop, ctx = runtime()
    if not gate.enter(give_up=drain.draining.is_set):
        enqueue_run(app, run_id)  # shutting down while it waited for a place: put it back
        return "requeued"
    try:
        if drain.draining.is_set():
            # Delivered while shutting down: put it back for a worker that stays.
            enqueue_run(app, run_id)
            return "requeued"
        future = asyncio.run_coroutine_threadsafe(
            _traced_run(ctx, run_id, _task_headers(self)), loop.loop
        )
        with drain.track(run_id, future):
            try:
                return future.result()
            except concurrent.futures.CancelledError:
                return "handed_back"
    finally:
        gate.leave()


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
