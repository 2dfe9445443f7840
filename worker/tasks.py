"""The worker's Celery tasks: thin wrappers that hand a run id to the runtime's loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import structlog
from celery import Celery, Task

from shared import telemetry
from shared.queue import RUN_TASK, WEBHOOK_TASK, enqueue_run
from worker import webhooks
from worker.context import LoopThread, WorkerContext
from worker.deliveries import announce
from worker.execute import execute_run
from worker.runtime import WorkerRuntime


def register_tasks(app: Celery, runtime: WorkerRuntime) -> None:
    """Register the run and webhook tasks on ``app``, bound to this process's runtime."""

    @app.task(
        name=RUN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
    )
    def run_flow(self: Task, run_id: str) -> str:
        """Execute one run; the run id is the whole message."""
        loop, ctx = runtime.started()
        ctx.held.add(run_id)  # until it returns: if this process dies, the sweep re-queues it
        asyncio.run_coroutine_threadsafe(announce(ctx, run_id), loop.loop)
        try:
            return _admitted_run(runtime, loop, ctx, run_id, _task_headers(self))
        finally:
            ctx.held.discard(run_id)

    @app.task(name=WEBHOOK_TASK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
    def deliver(self: Task, run_id: str) -> str:
        """Deliver one run's webhook; retried with exponential backoff until max attempts."""
        loop, ctx = runtime.started()
        state, retry_in = loop.run(webhooks.deliver(ctx, run_id))
        if retry_in is not None:
            raise self.retry(countdown=retry_in)
        return state


def _admitted_run(
    runtime: WorkerRuntime,
    loop: LoopThread,
    ctx: WorkerContext,
    run_id: str,
    headers: dict[str, Any],
) -> str:
    gate, drain = runtime.gate, runtime.drain
    if not gate.enter(give_up=drain.draining.is_set):
        enqueue_run(runtime.celery, run_id)  # shutting down while it waited: put it back
        return "requeued"
    try:
        if drain.draining.is_set():
            # Delivered while shutting down: put it back for a worker that stays.
            enqueue_run(runtime.celery, run_id)
            return "requeued"
        future = asyncio.run_coroutine_threadsafe(_traced_run(ctx, run_id, headers), loop.loop)
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
    # This coroutine is its own asyncio task, so the bound context stays with this run.
    structlog.contextvars.bind_contextvars(run_id=run_id, request_id=headers.get("request_id"))
    with telemetry.span("flowfleet.run", headers, run_id=run_id):
        return await execute_run(ctx, run_id)
