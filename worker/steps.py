"""One place that writes a run's ``run_steps`` rows: tool steps and model calls alike.

A step is what the run did, kept for the console (``GET /v1/runs/{id}/steps``, ``/timeline``).
It is never worth failing the run for: a write that fails is logged and the run goes on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from shared.logging import get_logger
from shared.models import RunStep
from worker.context import WorkerContext

log = get_logger("worker.steps")
_INSERT = insert(RunStep)


async def record_step(ctx: WorkerContext, row: dict[str, Any]) -> bool:
    """Insert one step row in its own statement; False (logged) when the database refused."""
    try:
        async with ctx.statements.begin() as conn:
            await conn.execute(_INSERT, [row])
    except Exception as exc:  # the run goes on; its steps lose one row
        error = type(exc).__name__
        log.warning("run.step_lost", run_id=row.get("run_id"), kind=row.get("kind"), error=error)
        return False
    return True
