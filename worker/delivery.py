"""Exactly-once results on at-least-once delivery: the attempt cap, durable result writes."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.errors import ExhaustedRetries
from shared.logging import error_text, get_logger
from shared.models import Run
from shared.settings import Settings

log = get_logger("worker.delivery")
T = TypeVar("T")
TRANSIENT_DB = (OperationalError, DBAPIError, PoolTimeout, ConnectionError, OSError)


def exhausted(run: Run, settings: Settings) -> ExhaustedRetries | None:
    """The dead-letter error when this claim is past the run's delivery budget."""
    if run.attempts <= settings.max_attempts:
        return None
    return ExhaustedRetries(
        f"the run was started {settings.max_attempts} times without finishing "
        "(its worker died or was stopped each time); POST /v1/runs/{id}/retry submits it again"
    )


async def durably(
    write: Callable[[], Awaitable[T]], *, run_id: str, within_s: float, what: str = "finish"
) -> T:
    """Retry a database write through an outage with capped, jittered backoff.

    The write must be idempotent (finish_run is: it is conditional on holding the
    lease). Past ``within_s`` the error propagates; the run keeps its lease until it
    expires, and the sweep re-runs it, so the result is late but never lost.
    """
    deadline = time.monotonic() + within_s
    attempt = 0
    while True:
        try:
            return await write()
        except TRANSIENT_DB as exc:
            attempt += 1
            wait = random.uniform(0.5, 1.0) * min(5.0, 0.2 * 2**attempt)
            if time.monotonic() + wait > deadline:
                log.error("run.write_gave_up", run_id=run_id, what=what, attempts=attempt)
                raise
            log.warning(
                "run.write_retry",
                run_id=run_id,
                what=what,
                attempt=attempt,
                error=error_text(exc),
            )
            await asyncio.sleep(wait)
