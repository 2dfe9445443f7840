"""Webhook delivery: a Celery task POSTs the finished run, signed, with backoff retries.

The POST goes through the egress policy (shared/egress.py): the host is resolved, every
address checked, the connection made to the checked address. Every attempt is recorded in
``Run.webhook`` with a coarse outcome only — ``delivered``, ``rejected`` (a non-2xx answer,
with its status code), ``unreachable`` or ``refused`` (the policy) — never the error text:
a client must not learn from it which internal ports answer (a port scanner). The detail
goes to the worker's log. The final state is ``delivered`` or ``failed``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from sqlalchemy import update

from shared.db import transaction
from shared.egress import EgressDenied, EgressFailed, fetch
from shared.logging import error_text, get_logger
from shared.models import Run, utcnow
from shared.queue import WEBHOOK_TASK
from shared.schemas import run_out
from shared.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from worker.context import WorkerContext

log = get_logger("worker.webhooks")


async def schedule(ctx: WorkerContext, run: Run) -> None:
    """Queue the delivery of a run that just became terminal, if it has a webhook."""
    if not run.webhook_url:
        return
    try:
        await asyncio.to_thread(ctx.celery.send_task, WEBHOOK_TASK, args=[run.id])
    except Exception as exc:
        log.warning("webhook.enqueue_failed", run_id=run.id, error=error_text(exc))


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


# Coarse outcomes of one attempt (what the run shows).
DELIVERED, REJECTED, UNREACHABLE, REFUSED = "delivered", "rejected", "unreachable", "refused"
RESPONSE_CAP_BYTES = 64 * 1024  # a receiver's answer is read only to close the exchange


async def post(ctx: WorkerContext, url: str, body: bytes) -> tuple[int | None, str]:
    """One signed POST through the egress policy; (status code, outcome). No redirects."""
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
        response = await fetch(
            ctx.settings,
            "POST",
            url,
            headers=headers,
            content=body,
            timeout_s=ctx.settings.webhook_timeout_s,
            max_bytes=RESPONSE_CAP_BYTES,
            follow_redirects=False,
        )
    except EgressDenied as exc:
        log.warning("webhook.refused", url=url, error=exc.message)
        return None, REFUSED
    except EgressFailed as exc:
        log.info("webhook.unreachable", url=url, error=exc.message)
        return None, UNREACHABLE
    ok = 200 <= response.status_code < 300
    return response.status_code, DELIVERED if ok else REJECTED


async def deliver(ctx: WorkerContext, run_id: str) -> tuple[str, float | None]:
    """One delivery attempt: (state, seconds until the next attempt or None when final).

    The ``flowfleet.webhook`` task (worker/tasks.py) calls it and schedules the retry.
    """
    url, body, webhook = await _load(ctx, run_id)
    if url is None or webhook.get("state") in ("delivered", "failed"):
        return "skipped", None
    status, outcome = await post(ctx, url, body)
    attempts = [*webhook.get("attempts", []), _attempt(status, outcome)]
    # A refusal is the policy's answer, the same on every try: no retry.
    final = outcome == REFUSED or len(attempts) >= ctx.settings.webhook_max_attempts
    state = "delivered" if outcome == DELIVERED else ("failed" if final else "retrying")
    await _record(ctx, run_id, {"url": url, "state": state, "attempts": attempts})
    log.info("webhook.attempt", run_id=run_id, status=status, outcome=outcome, state=state)
    if state == "retrying":
        return state, ctx.settings.webhook_retry_base_s * 2 ** (len(attempts) - 1)
    return state, None


def _attempt(status: int | None, outcome: str) -> dict[str, Any]:
    at: datetime = utcnow()
    return {"at": at.isoformat(), "outcome": outcome, "status_code": status}
