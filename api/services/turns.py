"""Turns of a conversation, as the API sees them: cancel a run, and a submit's `multitask`.

The runs of one session execute one at a time in submit order (shared/session_order.py);
the worker that ends a turn enqueues the next. The API ends turns too, when it cancels a
queued run: then it enqueues the next one itself. Cancelling lives here, in one place, for
``POST /v1/runs/{id}/cancel`` and for a submit with ``multitask: interrupt``.
"""

from __future__ import annotations

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.services import events as event_service
from api.services import runs as run_service
from api.state import AppState
from shared.errors import RunFinished, SessionBusy
from shared.logging import error_text, get_logger
from shared.models import RUNS, Run
from shared.queue import WEBHOOK_TASK, publish_runs
from shared.run_status import RunStatus
from shared.schemas import Multitask, RunCreate
from shared.session_order import first_unfinished, next_turn, unfinished
from shared.telemetry import propagation_headers

log = get_logger("api.turns")


async def cancel(state: AppState, db: AsyncSession, run_id: str, *, owner: str | None) -> Run:
    """Cancel a run: a queued one at once (its session's next turn is enqueued), a running
    one by a flag its worker notices. Raises RunNotFound, RunFinished."""
    run = await run_service.cancel_run(db, run_id, owner=owner)
    await db.commit()
    if run.status == RunStatus.CANCELLED:
        await event_service.announce_cancelled(state, run)
        if run.webhook_url:
            await anyio.to_thread.run_sync(
                lambda: state.celery.send_task(WEBHOOK_TASK, args=[run.id])
            )
        if run.session_id:
            await wake_next_turn(state, db, run.owner, run.session_id)
    else:
        await event_service.flag_cancel(state, run.id)
    log.info("run.cancel_requested", run_id=run_id, status=run.status)
    return run


async def wake_next_turn(state: AppState, db: AsyncSession, owner: str, session_id: str) -> None:
    """Enqueue the session's next turn if it waits queued (a run of it just ended).

    Best effort: if Redis is away, the sweep re-enqueues queued runs nobody holds.
    """
    try:
        waiting = await next_turn(await db.connection(), owner, session_id)
        await db.commit()  # the read's transaction: no connection held past this
        if waiting is not None:
            await publish_runs(state.redis, state.settings, [(waiting, propagation_headers())])
    except Exception as exc:
        log.warning("session.next_turn_failed", session_id=session_id, error=error_text(exc))


async def apply_multitask(
    state: AppState, db: AsyncSession, owner: str, bodies: list[RunCreate]
) -> None:
    """A submit's session rule, once every other rule passed and before its run is written.

    ``reject``: 409 ``session_busy`` while the session has a queued or running run.
    ``interrupt``: cancel each of them (the new run then waits only for the running one to
    stop). ``enqueue`` (the default) and runs without a session: nothing to do here.
    """
    for body in bodies:
        if body.session_id is None or body.multitask == Multitask.ENQUEUE:
            continue
        if body.multitask == Multitask.REJECT:
            await _refuse_if_busy(db, owner, body.session_id)
        else:
            await _interrupt(state, db, owner, body.session_id)


def checks_idle(body: RunCreate) -> bool:
    """Whether the run may be written only while its session is idle (``reject``)."""
    return body.session_id is not None and body.multitask == Multitask.REJECT


async def write_if_idle(db: AsyncSession, owner: str, run: Run) -> None:
    """Write a ``reject`` run if its session has no unfinished run, else 409, atomically.

    On PostgreSQL a transaction-scoped advisory lock on (owner, session) makes the check and
    the insert of two such submits take turns, so two racing for an idle session (a client
    double-texting) cannot both pass. Plain (``enqueue``) submits do not take it.
    """
    assert run.session_id is not None
    conn = await db.connection()
    if conn.dialect.name == "postgresql":
        name = f"flowfleet:session:{owner}:{run.session_id}"
        await db.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))
    try:
        await _refuse_if_busy(db, owner, run.session_id)
    except SessionBusy:
        await db.rollback()
        raise
    db.add(run)
    await db.commit()


async def _refuse_if_busy(db: AsyncSession, owner: str, session_id: str) -> None:
    busy = (await db.execute(first_unfinished(owner, session_id))).first()
    if busy is not None:
        raise SessionBusy(
            f"session {session_id!r} has run {busy.id} {busy.status}; wait for it to "
            "finish, or send multitask 'enqueue' to run after it or 'interrupt' to cancel it",
            run_id=busy.id,
        )


async def _interrupt(state: AppState, db: AsyncSession, owner: str, session_id: str) -> None:
    in_progress = (
        await db.scalars(
            select(RUNS.c.id)
            .where(
                RUNS.c.owner == owner,
                RUNS.c.session_id == session_id,
                unfinished(RUNS.c.status),
            )
            .order_by(RUNS.c.created_at, RUNS.c.id)
        )
    ).all()
    await db.commit()
    for run_id in in_progress:
        try:
            await cancel(state, db, run_id, owner=owner)
        except RunFinished:
            continue  # it ended meanwhile: nothing to interrupt
    if in_progress:
        log.info("session.interrupted", session_id=session_id, cancelled=len(in_progress))
