"""Retention: delete what is past its age, in short batches (README "Retention").

What goes, by the owner's policy (the settings, overridden by a ``retention_policies`` row):

- **runs** created more than ``runs_days`` ago (dead letters — failed ``exhausted_retries``
  — ``dead_letters_days``), with their steps and messages. Only finished runs: nothing
  queued or running is touched. A run that wrote session history is kept while that
  history is (its messages reference it): its age is the longer of the two, and it waits
  while any of its messages is younger than ``messages_days`` or its session has a run in
  flight.
- **run_steps** recorded more than ``events_days`` ago, of a finished run.
- **session_messages** older than ``messages_days``, and those before a session's last
  ``session_max_turns`` turns (a turn: one run's messages); never while the session has
  a queued or running run (that run reads the history).

Each batch is one short transaction: up to ``batch_size`` ids picked by an index, oldest
first, then deleted (dependents first, so each table's count is exact). The walk is
keyset-paged, so rows it keeps (in flight, or under a longer policy) are passed once per
round, never re-read by every batch. "Now" is the database's clock (shared/db_clock.py).

``purge_expired`` needs only an engine and settings: the worker's leader calls it
(worker/maintenance.py), and so does ``make bench-scale``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Select,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    not_,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from shared.db_clock import now_plus
from shared.logging import get_logger
from shared.metrics import RETENTION_DELETED
from shared.models import RUNS, RetentionPolicy, RunStep, SessionMessage
from shared.run_status import TERMINAL_STATUSES, RunStatus
from shared.session_order import unfinished
from shared.settings import Settings

log = get_logger("worker.retention")

MESSAGES = cast(Table, SessionMessage.__table__)
STEPS = cast(Table, RunStep.__table__)
POLICIES = cast(Table, RetentionPolicy.__table__)
DEAD_LETTER_CODE = "exhausted_retries"  # shared/errors.py ExhaustedRetries
_TERMINAL = sorted(s.value for s in TERMINAL_STATUSES)
_DAY_S = 86_400.0
# The turn cap checks sessions that got a message since the last round; a leader's first
# round (no last round) looks back this far.
TURNS_LOOKBACK_DAYS = 1.0


@dataclass(frozen=True)
class Policy:
    """Days each kind is kept (None: forever) and a session's turn cap (None: no cap)."""

    runs_days: float | None
    events_days: float | None
    messages_days: float | None
    dead_letters_days: float | None
    session_max_turns: int | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            runs_days=_days(settings.retention_runs_days),
            events_days=_days(settings.retention_events_days),
            messages_days=_days(settings.retention_messages_days),
            dead_letters_days=_days(settings.retention_dead_letters_days),
            session_max_turns=settings.retention_session_max_turns or None,
        )

    def overridden(self, row: Any) -> Policy:
        """This policy with an owner's row applied: NULL follows it, 0 is forever (no cap)."""
        values = {}
        for f in fields(self):
            own = getattr(row, f.name)
            if own is None:
                values[f.name] = getattr(self, f.name)
            elif f.name == "session_max_turns":
                values[f.name] = int(own) or None
            else:
                values[f.name] = _days(own)
        return Policy(**values)


@dataclass
class RetentionState:
    """What a leader carries from round to round: the last message id the turn cap saw."""

    turns_checked_id: int | None = None


@dataclass(frozen=True)
class _Scope:
    """The owners one policy covers: one owner, or everyone without a row of their own."""

    policy: Policy
    owner: str | None = None
    excluded: tuple[str, ...] = ()

    def owns(self, column: ColumnElement[str]) -> ColumnElement[bool]:
        if self.owner is not None:
            return column == self.owner
        return column.not_in(self.excluded) if self.excluded else true()


def _days(value: float | int | None) -> float | None:
    return float(value) if value else None


def _older_than(days: float) -> ColumnElement[Any]:
    """The cutoff ``days`` ago, on the database's clock."""
    return now_plus(-days * _DAY_S)


def _longest(*days: float | None) -> float | None:
    return None if any(d is None for d in days) else max(d for d in days if d is not None)


async def purge_expired(
    engine: AsyncEngine,
    settings: Settings,
    *,
    batch_size: int | None = None,
    state: RetentionState | None = None,
) -> dict[str, int]:
    """Delete everything past its retention; rows deleted per table.

    ``batch_size`` defaults to ``settings.retention_batch_size``; ``state`` carries the turn
    cap's progress between rounds (without it the cap looks back ``TURNS_LOOKBACK_DAYS``).
    """
    batch = batch_size or settings.retention_batch_size
    started = time.monotonic()
    counts = {"session_messages": 0, "run_steps": 0, "runs": 0}
    default, owners = await load_policies(engine, settings)
    scopes = [_Scope(policy, owner=owner) for owner, policy in owners.items()]
    scopes.append(_Scope(default, excluded=tuple(sorted(owners))))
    for scope in scopes:
        if scope.policy.messages_days is not None:
            await _walk(engine, _old_messages(scope, scope.policy.messages_days), batch, counts)
    await _cap_turns(engine, default, owners, state or RetentionState(), batch, counts)
    steps = _old_steps(default, owners)
    if steps is not None:
        await _walk(engine, steps, batch, counts)
    for scope in scopes:
        for in_session in (False, True):
            runs = _old_runs(scope, in_session=in_session)
            if runs is not None:
                await _walk(engine, runs, batch, counts)
    log.info(
        "retention.purged",
        duration_ms=round((time.monotonic() - started) * 1000),
        **counts,
    )
    return counts


async def load_policies(
    engine: AsyncEngine, settings: Settings
) -> tuple[Policy, dict[str, Policy]]:
    """The settings' policy and each owner's with its overrides applied."""
    default = Policy.from_settings(settings)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(POLICIES))).all()
    return default, {row.owner: default.overridden(row) for row in rows}


# A pick: the next batch's select, given the last (created_at, id) deleted; and the table.
Pick = Callable[[tuple[datetime, Any] | None], Select[Any]]


@dataclass(frozen=True)
class _Walk:
    table: Table
    pick: Pick


async def _walk(engine: AsyncEngine, walk: _Walk, batch: int, counts: dict[str, int]) -> None:
    """Delete what ``walk`` picks, a batch per transaction, until a batch comes back short."""
    after: tuple[datetime, Any] | None = None
    while True:
        async with engine.begin() as conn:
            rows = (await conn.execute(walk.pick(after).limit(batch))).all()
            if not rows:
                return
            ids = [row.id for row in rows]
            await _delete(conn, walk.table, ids, counts)
        after = (rows[-1].created_at, rows[-1].id)
        if len(rows) < batch:
            return


async def _delete(
    conn: AsyncConnection, table: Table, ids: list[Any], counts: dict[str, int]
) -> None:
    if table is RUNS:
        # Dependents first, counted; the foreign keys' cascades then find nothing left.
        await _count(conn, delete(STEPS).where(STEPS.c.run_id.in_(ids)), "run_steps", counts)
        await _count(
            conn, delete(MESSAGES).where(MESSAGES.c.run_id.in_(ids)), "session_messages", counts
        )
        # Re-checked in the delete itself: nothing in flight goes, whatever happened since.
        statement = delete(RUNS).where(RUNS.c.id.in_(ids), RUNS.c.status.in_(_TERMINAL))
    elif table is MESSAGES:
        statement = delete(MESSAGES).where(MESSAGES.c.id.in_(ids), not_(_session_busy(MESSAGES)))
    else:
        statement = delete(table).where(table.c.id.in_(ids))
    await _count(conn, statement, table.name, counts)


async def _count(conn: AsyncConnection, statement: Any, name: str, counts: dict[str, int]) -> None:
    deleted = int((await conn.execute(statement)).rowcount or 0)
    if deleted:
        counts[name] += deleted
        RETENTION_DELETED.labels(table=name).inc(deleted)


def _keyset(table: Table, after: tuple[datetime, Any] | None) -> ColumnElement[bool]:
    if after is None:
        return true()
    return tuple_(table.c.created_at, table.c.id) > tuple_(*after)


def _oldest_first(query: Select[Any], table: Table) -> Select[Any]:
    return query.order_by(table.c.created_at, table.c.id)


def _session_busy(table: Table) -> ColumnElement[bool]:
    """The row's session (same owner) has a queued or running run: it reads the history.

    On the partial index ``ix_runs_session_active`` (only unfinished runs are in it).
    """
    live = RUNS.alias("retention_live")
    return exists(
        select(live.c.id).where(
            live.c.owner == table.c.owner,
            live.c.session_id == table.c.session_id,
            unfinished(live.c.status),
        )
    )


def _old_messages(scope: _Scope, days: float) -> _Walk:
    def pick(after: tuple[datetime, Any] | None) -> Select[Any]:
        return _oldest_first(
            select(MESSAGES.c.id, MESSAGES.c.created_at).where(
                scope.owns(MESSAGES.c.owner),
                MESSAGES.c.created_at < _older_than(days),
                _keyset(MESSAGES, after),
                not_(_session_busy(MESSAGES)),
            ),
            MESSAGES,
        )

    return _Walk(MESSAGES, pick)


def _old_steps(default: Policy, owners: dict[str, Policy]) -> _Walk | None:
    """One walk for every owner: steps carry no owner (their run does), so a walk per owner
    would read every owner's steps. Each step is held to its run's owner's age."""
    ages = {owner: p.events_days for owner, p in owners.items()}
    days = [d for d in (default.events_days, *ages.values()) if d is not None]
    if not days:
        return None
    own = [(RUNS.c.owner == owner, _older_than(d)) for owner, d in ages.items() if d is not None]
    forever = [owner for owner, d in ages.items() if d is None]
    fallback = None if default.events_days is None else _older_than(default.events_days)
    cutoff = case(*own, else_=fallback) if own else fallback
    conditions = [
        # A step is never older than its run: the walk by the step's age reaches each in time.
        STEPS.c.created_at < _older_than(min(days)),  # the index range
        RUNS.c.status.in_(_TERMINAL),
        STEPS.c.created_at < cutoff,
    ]
    if forever:
        conditions.append(RUNS.c.owner.not_in(forever))

    def pick(after: tuple[datetime, Any] | None) -> Select[Any]:
        return _oldest_first(
            select(STEPS.c.id, STEPS.c.created_at)
            .join(RUNS, RUNS.c.id == STEPS.c.run_id)
            .where(*conditions, _keyset(STEPS, after)),
            STEPS,
        )

    return _Walk(STEPS, pick)


def _is_dead_letter(negate: bool = False) -> ColumnElement[bool]:
    if not negate:
        return and_(RUNS.c.status == RunStatus.FAILED.value, RUNS.c.error_code == DEAD_LETTER_CODE)
    # Spelled out, not NOT(...): a NULL error_code must count as "not a dead letter".
    return or_(
        RUNS.c.status != RunStatus.FAILED.value,
        RUNS.c.error_code.is_(None),
        RUNS.c.error_code != DEAD_LETTER_CODE,
    )


def _old_runs(scope: _Scope, *, in_session: bool) -> _Walk | None:
    """Runs without a session, or (``in_session``) those that wrote history: two walks, so
    the history checks are plain NOT EXISTS conditions the planner runs as index probes."""
    p = scope.policy
    if in_session:
        kinds = [
            (_is_dead_letter(negate=True), _longest(p.runs_days, p.messages_days)),
            (_is_dead_letter(), _longest(p.dead_letters_days, p.messages_days)),
        ]
    else:
        kinds = [
            (_is_dead_letter(negate=True), p.runs_days),
            (_is_dead_letter(), p.dead_letters_days),
        ]
    kept = [(kind, days) for kind, days in kinds if days is not None]
    if not kept:
        return None
    youngest = min(days for _, days in kept)
    conditions = [
        scope.owns(RUNS.c.owner),
        RUNS.c.created_at < _older_than(youngest),  # the index range
        RUNS.c.status.in_(_TERMINAL),
        or_(*(and_(kind, RUNS.c.created_at < _older_than(days)) for kind, days in kept)),
    ]
    if not in_session:
        conditions.append(RUNS.c.session_id.is_(None))
    else:
        assert p.messages_days is not None  # else no kind of session run has an age
        young_message = exists(
            select(MESSAGES.c.id).where(
                MESSAGES.c.run_id == RUNS.c.id,
                MESSAGES.c.created_at >= _older_than(p.messages_days),
            )
        )
        conditions += [
            RUNS.c.session_id.is_not(None),
            not_(young_message),
            not_(_session_busy(RUNS)),
        ]

    def pick(after: tuple[datetime, Any] | None) -> Select[Any]:
        return _oldest_first(
            select(RUNS.c.id, RUNS.c.created_at).where(*conditions, _keyset(RUNS, after)), RUNS
        )

    return _Walk(RUNS, pick)


async def _cap_turns(
    engine: AsyncEngine,
    default: Policy,
    owners: dict[str, Policy],
    state: RetentionState,
    batch: int,
    counts: dict[str, int],
) -> None:
    """Trim each session that got a message since the last round to its last N turns.

    Only a new message can take a session over its cap, so sessions without one are not
    read. A cap lowered later applies to a session at its next turn.
    """
    if default.session_max_turns is None and not any(p.session_max_turns for p in owners.values()):
        return
    async with engine.connect() as conn:
        top = (await conn.execute(select(func.max(MESSAGES.c.id)))).scalar()
        if top is None:
            return
        since = state.turns_checked_id
        if since is None:
            first_recent = (
                await conn.execute(
                    _oldest_first(
                        select(MESSAGES.c.id).where(
                            MESSAGES.c.created_at >= _older_than(TURNS_LOOKBACK_DAYS)
                        ),
                        MESSAGES,
                    ).limit(1)
                )
            ).scalar()
            since = top if first_recent is None else int(first_recent) - 1
        touched = (
            await conn.execute(
                select(MESSAGES.c.owner, MESSAGES.c.session_id)
                .where(MESSAGES.c.id > since, MESSAGES.c.id <= top)
                .distinct()
            )
        ).all()
    for owner, session_id in touched:
        cap = owners.get(owner, default).session_max_turns
        if cap:
            await _cap_session(engine, owner, session_id, cap, batch, counts)
    state.turns_checked_id = int(top)


async def _cap_session(
    engine: AsyncEngine,
    owner: str,
    session_id: str,
    cap: int,
    batch: int,
    counts: dict[str, int],
) -> None:
    of_session = and_(MESSAGES.c.owner == owner, MESSAGES.c.session_id == session_id)
    turns = (
        select(func.min(MESSAGES.c.id).label("first_id"))
        .where(of_session)
        .group_by(MESSAGES.c.run_id)
        .subquery()
    )
    async with engine.connect() as conn:
        # The first message of the cap-th newest turn: everything before it goes.
        keep_from = (
            await conn.execute(
                select(turns.c.first_id).order_by(turns.c.first_id.desc()).offset(cap - 1).limit(1)
            )
        ).scalar()
    if keep_from is None:
        return

    def pick(after: tuple[datetime, Any] | None) -> Select[Any]:
        # By id here (the session's index); ``after`` is unused: each batch deletes its rows,
        # or nothing (the session became busy), which ends the walk.
        return (
            select(MESSAGES.c.id, MESSAGES.c.created_at)
            .where(of_session, MESSAGES.c.id < keep_from, not_(_session_busy(MESSAGES)))
            .order_by(MESSAGES.c.id)
        )

    await _walk(engine, _Walk(MESSAGES, pick), batch, counts)


def first_batches(
    default: Policy, owners: dict[str, Policy] | None = None, *, batch: int = 1000
) -> dict[str, Select[Any]]:
    """Each walk's first select, by name (tests/api/test_list_plans.py explains them: the
    job's own queries are held to the same index rule as the API's)."""
    owners = owners or {}
    scopes = [_Scope(p, owner=o) for o, p in owners.items()]
    scopes.append(_Scope(default, excluded=tuple(sorted(owners))))
    walks: dict[str, _Walk | None] = {"run_steps": _old_steps(default, owners)}
    for scope in scopes:
        name = f"owner {scope.owner}" if scope.owner else "default"
        if scope.policy.messages_days is not None:
            walks[f"session_messages {name}"] = _old_messages(scope, scope.policy.messages_days)
        walks[f"runs {name}"] = _old_runs(scope, in_session=False)
        walks[f"runs in sessions {name}"] = _old_runs(scope, in_session=True)
    return {name: walk.pick(None).limit(batch) for name, walk in walks.items() if walk is not None}
