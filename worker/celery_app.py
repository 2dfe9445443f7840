"""The worker's Celery app: a thread pool whose threads hand runs to one asyncio loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

from celery import Celery, signals

from shared.logging import configure_logging, get_logger
from shared.queue import RUN_TASK, enqueue_run, make_celery
from shared.settings import get_settings
from worker.context import LoopThread, WorkerContext, build_context
from worker.shutdown import Drain

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
drain = Drain()


def runtime() -> tuple[LoopThread, WorkerContext]:
    """The process's loop and context, made on first use (never at import)."""
    global _runtime
    with _lock:
        if _runtime is None:
            loop = LoopThread()
            ctx = build_context(settings, app)
            _runtime = (loop, ctx)
            from worker.maintenance import maintain

            asyncio.run_coroutine_threadsafe(maintain(ctx), loop.loop)
            log.info(
                "worker.started", worker_id=ctx.worker_id, concurrency=settings.worker_concurrency
            )
        return _runtime


@signals.worker_init.connect
def _on_worker_init(**_: Any) -> None:
    configure_logging(settings)


@signals.worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    runtime()


@signals.worker_shutting_down.connect
def _on_worker_shutting_down(**_: Any) -> None:
    # SIGTERM: Celery stops consuming and waits for running tasks; we bound that wait.
    loop, ctx = _runtime if _runtime is not None else (None, None)
    drain.begin(loop, ctx, settings.shutdown_grace_s)
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
        loop.run(ctx.engine.dispose(), timeout=5)
        loop.stop()


@app.task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_flow(run_id: str) -> str:
    """Execute one run; the run id is the whole message."""
    from worker.execute import execute_run

    loop, ctx = runtime()
    if drain.draining.is_set():
        # Delivered while shutting down: put it back for a worker that stays.
        enqueue_run(app, run_id)
        return "requeued"
    future = asyncio.run_coroutine_threadsafe(execute_run(ctx, run_id), loop.loop)
    with drain.track(run_id, future):
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            return "handed_back"
