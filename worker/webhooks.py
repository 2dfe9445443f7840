"""Webhook delivery: a Celery task POSTs the finished run, signed, with backoff retries.

Every attempt (time, status code or error) is recorded in ``Run.webhook`` so the
client can see it on the run; the final state is ``delivered`` or ``failed``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
from celery import Task
from sqlalchemy import update

from shared.db import transaction
from shared.logging import get_logger
from shared.models import Run, utcnow
from shared.queue import WEBHOOK_TASK
from shared.schemas import run_out
from shared.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from worker.celery_app import app, runtime
from worker.context import WorkerContext

log = get_logger("worker.webhooks")


async def schedule(ctx: WorkerContext, run: Run) -> None:
    """Queue the delivery of a run that just became terminal, if it has a webhook."""
    if not run.webhook_url:
        return
    try:
        await asyncio.to_thread(ctx.celery.send_task, WEBHOOK_TASK, args=[run.id])
    except Exception as exc:
        log.warning("webhook.enqueue_failed", run_id=run.id, error=type(exc).__name__)


async def _load(ctx: WorkerContext, run_id: str) -> tuple[str | None, bytes, dict[str, Any]]:
    async with transaction(ctx.sessions) as session:
        run = await session.get(Run, run_id)
        if run is None:
            return None, b"", {}
        return run.webhook_url, run_out(run).model_dump_json().encode(), dict(run.webhook or {})


async def _record(ctx: WorkerContext, run_id: str, webhook: dict[str, Any]) -> None:
    async with transaction(ctx.sessions) as session:
        await session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(webhook=webhook)
            .execution_options(synchronize_session=False)
        )


def post(ctx: WorkerContext, url: str, body: bytes) -> tuple[int | None, str | None]:
    """One signed POST; (status code, error). Redirects are not followed."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "flowfleet-webhook/1",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(
            ctx.settings.webhook_secret.get_secret_value(), timestamp, body
        ),
    }
    try:
        with httpx.Client(timeout=ctx.settings.webhook_timeout_s, follow_redirects=False) as c:
            response = c.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    return response.status_code, None


@app.task(name=WEBHOOK_TASK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def deliver(self: Task, run_id: str) -> str:
    """Deliver one run's webhook; retried with exponential backoff until max attempts."""
    loop, ctx = runtime()
    url, body, webhook = loop.run(_load(ctx, run_id))
    if url is None or webhook.get("state") in ("delivered", "failed"):
        return "skipped"
    status, error = post(ctx, url, body)
    attempts = [*webhook.get("attempts", []), _attempt(status, error)]
    ok = status is not None and 200 <= status < 300
    final = len(attempts) >= ctx.settings.webhook_max_attempts
    state = "delivered" if ok else ("failed" if final else "retrying")
    loop.run(_record(ctx, run_id, {"url": url, "state": state, "attempts": attempts}))
    log.info("webhook.attempt", run_id=run_id, status=status, error=error, state=state)
    if state == "retrying":
        countdown = ctx.settings.webhook_retry_base_s * 2 ** (len(attempts) - 1)
        raise self.retry(countdown=countdown)
    return state


def _attempt(status: int | None, error: str | None) -> dict[str, Any]:
    at: datetime = utcnow()
    return {"at": at.isoformat(), "status_code": status, "error": error}
