"""Runs as the API sees them: create, read, list; sessions' messages."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.services.flows import FlowRef
from shared.errors import (
    IdempotencyConflict,
    InvalidRequest,
    RunFinished,
    RunNotFinished,
    RunNotFound,
)
from shared.models import ANONYMOUS, TERMINAL_STATUSES, Flow, Run, SessionMessage, utcnow
from shared.run_status import RunStatus
from shared.schemas import RunCreate, unstorable_at

FlowLike = Flow | FlowRef


def request_hash(flow_id: str, body: RunCreate) -> str:
    """SHA-256 of the canonical JSON of the flow id and the request body."""
    canonical = json.dumps(
        {"flow_id": flow_id, "body": body.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_run(flow: FlowLike, body: RunCreate, owner: str) -> Run:
    """A queued run of the flow's current version."""
    return Run(
        id=str(uuid.uuid4()),
        flow_id=flow.id,
        flow_version=flow.current_version,
        session_id=body.session_id,
        owner=owner,
        input=body.input,
        tweaks=body.tweaks,
        meta=body.metadata,
        status=RunStatus.QUEUED,
        attempts=0,
        cached=False,
        webhook_url=body.webhook,
        created_at=utcnow(),  # set here: the run writer inserts with Core, without ORM defaults
    )


async def create_runs(
    session: AsyncSession, *, flow: FlowLike, bodies: list[RunCreate], owner: str = ANONYMOUS
) -> list[Run]:
    """Queued runs for a batch, in one transaction."""
    runs = [new_run(flow, body, owner) for body in bodies]
    session.add_all(runs)
    await session.flush()
    return runs


async def create_run_idempotent(
    session: AsyncSession,
    *,
    flow: FlowLike,
    body: RunCreate,
    key: str,
    owner: str = ANONYMOUS,
    ttl_s: int = 24 * 3600,
) -> tuple[Run, bool]:
    """(run, created): a new run, or the one this key already created for the same request.

    Correct under concurrent duplicates: the insert races on the unique (owner, key)
    constraint, and the losers read the winner; there is no read-then-write window.
    """
    digest = request_hash(flow.id, body)
    for _ in range(3):
        run = new_run(flow, body, owner)
        run.idempotency_key, run.request_hash = key, digest
        try:
            async with session.begin_nested():
                session.add(run)
        except IntegrityError:
            pass  # the savepoint rolled back; the row with this key is someone else's
        else:
            return run, True
        winner = (
            await session.scalars(select(Run).where(Run.owner == owner, Run.idempotency_key == key))
        ).one_or_none()
        if winner is None:
            continue  # it expired and was released between our insert and this read
        if winner.created_at < utcnow() - timedelta(seconds=ttl_s):
            # An expired key is free again: release it from the old run, then insert.
            await session.execute(
                update(Run)
                .where(Run.id == winner.id, Run.idempotency_key == key)
                .values(idempotency_key=None)
                .execution_options(synchronize_session=False)
            )
            continue
        if winner.request_hash != digest:
            raise IdempotencyConflict(
                "this Idempotency-Key was used for a different request "
                f"in the last {ttl_s} s; use a new key"
            )
        return winner, False
    raise IdempotencyConflict("the Idempotency-Key is contended; retry the request")


async def cancel_run(session: AsyncSession, run_id: str, *, owner: str | None = None) -> Run:
    """Cancel a queued run at once; a running one is returned as is for the caller to flag.

    Raises RunFinished when the run is already terminal.
    """
    run = await get_run(session, run_id, owner=owner)
    if run.status in TERMINAL_STATUSES:
        raise RunFinished(f"run {run_id} already finished ({run.status})")
    now = utcnow()
    result = await session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.QUEUED)
        .values(
            status=RunStatus.CANCELLED, finished_at=now, lease_owner=None, lease_expires_at=None
        )
        .execution_options(synchronize_session=False)
    )
    await session.refresh(run)
    if result.rowcount != 1 and run.status in TERMINAL_STATUSES:  # type: ignore[attr-defined]
        raise RunFinished(f"run {run_id} already finished ({run.status})")
    return run


async def get_run(session: AsyncSession, run_id: str, *, owner: str | None = None) -> Run:
    """A run by id; ``owner`` limits it to that owner's runs (None sees all)."""
    run = await session.get(Run, run_id)
    if run is None or (owner is not None and run.owner != owner):
        raise RunNotFound(f"no run with id {run_id!r}")
    return run


def retry_body(original: Run) -> RunCreate:
    """The request that submits a finished run again: its input, session, tweaks, webhook."""
    if original.status not in TERMINAL_STATUSES:
        raise RunNotFinished(f"run {original.id} is {original.status}; retry a finished run")
    return RunCreate.model_construct(
        input=original.input,
        session_id=original.session_id,
        tweaks=original.tweaks or {},
        metadata={**(original.meta or {}), "retry_of": original.id},
        webhook=original.webhook_url,
    )


def _encode_cursor(run: Run) -> str:
    raw = f"{run.created_at.isoformat()}|{run.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    # A cursor comes back from the client: anything it can be edited into is a 422, never a
    # 500 (an out-of-range date overflows; a naive one cannot compare with the column).
    try:
        created, run_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        at = datetime.fromisoformat(created)
        if at.tzinfo is None or unstorable_at(run_id, "cursor") or len(run_id) > 64:
            raise ValueError("not a cursor")
        at.astimezone(UTC)  # overflows here, not in the driver, when near datetime's ends
        return at, run_id
    except (ValueError, OverflowError) as exc:
        raise InvalidRequest("cursor is not one this API returned", field="cursor") from exc


def list_runs_query(
    *,
    owner: str | None = None,
    flow_id: str | None = None,
    session_id: str | None = None,
    status: str | None = None,
    error_code: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Select[Run]:
    """The list's statement (one more row than ``limit``: it tells whether a page follows).

    Its own function so tests/api/test_list_plans.py explains exactly what the API sends.
    """
    query = select(Run)
    if owner is not None:
        query = query.where(Run.owner == owner)
    if flow_id:
        query = query.where(Run.flow_id == flow_id)
    if session_id:
        query = query.where(Run.session_id == session_id)
    if status:
        query = query.where(Run.status == status)
    if error_code:
        query = query.where(Run.error_code == error_code)
    if cursor:
        created, run_id = _decode_cursor(cursor)
        query = query.where(
            or_(Run.created_at < created, and_(Run.created_at == created, Run.id < run_id))
        )
    return query.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit + 1)


async def list_runs(
    session: AsyncSession,
    *,
    owner: str | None = None,
    flow_id: str | None = None,
    session_id: str | None = None,
    status: str | None = None,
    error_code: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Run], str | None]:
    """Runs newest first, filtered; keyset pagination on (created_at, id)."""
    query = list_runs_query(
        owner=owner,
        flow_id=flow_id,
        session_id=session_id,
        status=status,
        error_code=error_code,
        limit=limit,
        cursor=cursor,
    )
    runs = list((await session.scalars(query)).all())
    next_cursor = _encode_cursor(runs[limit - 1]) if len(runs) > limit else None
    return runs[:limit], next_cursor


def session_messages_query(
    session_id: str, *, owner: str | None = None, after: int | None = None, limit: int | None = None
) -> Select[SessionMessage]:
    """A session's history, oldest first (the statement GET .../messages sends): the
    messages after the id ``after``, at most ``limit`` of them."""
    query = select(SessionMessage).where(SessionMessage.session_id == session_id)
    if owner is not None:
        query = query.where(SessionMessage.owner == owner)
    if after is not None:
        query = query.where(SessionMessage.id > after)
    query = query.order_by(SessionMessage.id)
    return query if limit is None else query.limit(limit)


async def session_messages(
    session: AsyncSession,
    session_id: str,
    *,
    owner: str | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> list[SessionMessage]:
    query = session_messages_query(session_id, owner=owner, after=after, limit=limit)
    return list((await session.scalars(query)).all())


async def forget_session(
    session: AsyncSession, session_id: str, *, owner: str | None = None
) -> int:
    """Delete a session's history; returns how many messages went."""
    query = delete(SessionMessage).where(SessionMessage.session_id == session_id)
    if owner is not None:
        query = query.where(SessionMessage.owner == owner)
    result = await session.execute(query)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
