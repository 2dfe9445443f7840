"""One turn at a time per conversation: the rule a claim checks and the next turn's lookup.

Runs that share a session (same owner, same ``session_id``) execute one at a time, in
submit order (``created_at``, then ``id``). Nothing waits in a worker slot for its turn:

- a claim refuses a run while its session has a run that is running, or an earlier run
  that is not finished (``turn_is_free``); the refused message is acked and dropped, and
  the run stays ``queued``, parked in the database;
- whoever ends a session's run (the worker that records its outcome, the API that cancels
  it while queued) enqueues the session's next turn (``next_turn``) once that end is
  committed, so the next turn starts one queue hop later;
- a worker that dies holding a turn keeps it until its lease expires; the sweep then puts
  that run back to ``queued`` (still the session's first unfinished run, so still first).

Everything here is on the runs table and the partial index ``ix_runs_session_active``
(only unfinished runs are in it, so it stays small however many runs are kept).
"""

from __future__ import annotations

from sqlalchemy import Select, Table, and_, exists, literal_column, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from shared.models import RUNS
from shared.run_status import RunStatus

ACTIVE_STATUSES = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


def unfinished(status: ColumnElement[str]) -> ColumnElement[bool]:
    """``status IN ('queued', 'running')`` written with literals, not parameters: a prepared
    statement's generic plan can use the partial index only when the query's own condition
    proves the index's, and a parameter proves nothing."""
    return status.in_([literal_column(f"'{value}'") for value in ACTIVE_STATUSES])


def turn_is_free(runs: Table = RUNS) -> ColumnElement[bool]:
    """True for a row of ``runs`` that may start now: it has no session, or no other run of
    its session is running and none submitted before it is unfinished."""
    other = RUNS.alias("turn_other")
    blocking = exists(
        select(other.c.id).where(
            other.c.owner == runs.c.owner,
            other.c.session_id == runs.c.session_id,
            unfinished(other.c.status),
            other.c.id != runs.c.id,
            or_(
                # Running at all blocks, whatever its place: one turn at a time even if two
                # API replicas' clocks disagree about which run came first.
                other.c.status == RunStatus.RUNNING,
                other.c.created_at < runs.c.created_at,
                and_(other.c.created_at == runs.c.created_at, other.c.id < runs.c.id),
            ),
        )
    )
    return or_(runs.c.session_id.is_(None), not_(blocking))


def first_unfinished(owner: str, session_id: str) -> Select[tuple[str, str]]:
    """The session's first unfinished run (id, status), in submit order."""
    return (
        select(RUNS.c.id, RUNS.c.status)
        .where(
            RUNS.c.owner == owner,
            RUNS.c.session_id == session_id,
            unfinished(RUNS.c.status),
        )
        .order_by(RUNS.c.created_at, RUNS.c.id)
        .limit(1)
    )


async def next_turn(conn: AsyncConnection, owner: str, session_id: str) -> str | None:
    """The run whose turn it is now, if it waits queued (None: none waits, or one is running).

    Called after a session's run ended and that end was committed: the run it names was
    (or may have been) refused by a claim while that run was unfinished, so its message is
    gone and it must be enqueued again. Enqueuing one that also has a message is harmless
    (its second claim does nothing).
    """
    row = (await conn.execute(first_unfinished(owner, session_id))).first()
    if row is None or row.status != RunStatus.QUEUED:
        return None
    return str(row.id)
