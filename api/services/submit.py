"""Accepting runs: every rule a run must pass to be taken, in one place.

Every entry point calls this module and only translates HTTP around it: ``POST
/v1/flows/{id}/runs`` (``submit``), ``POST /v1/flows/{id}/runs:batch`` (``submit_batch``),
``POST /v1/runs/{id}/retry`` (``retry``), ``POST /v1/chat/completions`` (``submit``),
``POST /v1/flows/{id}/trigger`` (``submit``), ``POST /v1/schedules`` (``check``: rules 1-4
when the schedule is made; its firings pass 3 and 6 in shared/schedules.py), and the
LangFlow-compatible endpoints to come. The rules, cheapest first; nothing
is written until all of them pass:

1. sizes: the batch's length, each run's input, tweaks and metadata (``api.limits``);
   strings that cannot be stored (NUL, lone surrogates) are refused by ``RunCreate``;
2. each run's webhook URL (``shared.webhooks``);
3. the flow exists (its current version, cached a second per process);
4. tweaks name components and fields the flow has (a 422 here, not a failure in a worker);
   each File node has files, every one the submitter's own (422 ``file_required``, 404
   ``file_not_found``: ``api.services.files``);
5. rate: one token per run from the caller's bucket (the request guard spent the first);
6. queue caps: overall and per flow (503 ``queue_full``), the key's share (429
   ``key_queue_full``);
7. a session's ``multitask``: ``reject`` refuses (409 ``session_busy``) while the session
   has an unfinished run, ``interrupt`` cancels those runs (``api.services.turns``);
8. idempotency (with an Idempotency-Key), then the write and the enqueue.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal
from api.limits import check_run_limits
from api.ratelimit import Admission, rate_identity
from api.services import files as file_service
from api.services import flows as flow_service
from api.services import runs as run_service
from api.services import turns
from api.services.flows import FlowRef
from api.state import AppState, SessionOnDemand
from flows.definitions import FLOW_ID_PATTERN
from shared.errors import FlowfleetError, FlowNotFound, InvalidRequest, RateLimited
from shared.logging import error_text, get_logger
from shared.metrics import RUNS_SUBMITTED
from shared.models import Run
from shared.schemas import RunCreate
from shared.settings import Settings
from shared.webhooks import validate_url

log = get_logger("api.submit")


@dataclass(frozen=True)
class Submitter:
    """Who submits: the owner the runs belong to and the rate-limit bucket they spend."""

    owner: str
    rate_identity: str
    visible_owner: str | None  # whose flows it may run (None: an admin, every flow)


def submitter(settings: Settings, caller: Principal, client_host: str | None) -> Submitter:
    """The submitter of a request by ``caller`` from ``client_host`` (its IP with auth off)."""
    return Submitter(
        owner=caller.owner,
        rate_identity=rate_identity(settings, caller.owner, client_host),
        visible_owner=caller.visible_owner,
    )


@dataclass(frozen=True)
class Accepted:
    """A run taken now, or (``created`` False) the one its Idempotency-Key already made."""

    run: Run
    created: bool = True


async def submit(
    state: AppState,
    who: Submitter,
    *,
    flow_id: str,
    body: RunCreate,
    idempotency_key: str | None = None,
) -> Accepted:
    """Check one run against every rule, then record and queue it."""
    # A `reject` run is checked and written in one locked transaction (api.services.turns).
    guarded = not idempotency_key and turns.checks_idle(body)
    async with SessionOnDemand(state.sessions) as db:
        flow, admission = await _admit(state, db, who, flow_id, [body])
        with _settling(admission, write=False):
            replay = bool(idempotency_key) and await _replayed(db, who.owner, str(idempotency_key))
            if not replay and not guarded:
                await turns.apply_multitask(state, db, who.owner, [body])
            if idempotency_key:
                run, created = await run_service.create_run_idempotent(
                    db,
                    flow=flow,
                    body=body,
                    key=idempotency_key,
                    owner=who.owner,
                    ttl_s=state.settings.idempotency_ttl_s,
                )
                await db.commit()
            else:
                run, created = run_service.new_run(flow, body, who.owner), True
                if guarded:
                    await turns.write_if_idle(db, who.owner, run)
    # The session is closed: no pooled connection is held while waiting for the shared write.
    with _settling(admission):
        if not idempotency_key and not guarded:
            await state.run_writer.accept(run)
        elif created:
            await state.run_writer.enqueue([run])  # unreachable: its row goes, 503
    if created:
        log.info("run.submitted", run_id=run.id, flow_id=flow.id)
        RUNS_SUBMITTED.labels(flow.id).inc()
    return Accepted(run, created)


async def submit_batch(
    state: AppState, who: Submitter, *, flow_id: str, bodies: Sequence[RunCreate]
) -> list[Run]:
    """Check every run against every rule, record them in one transaction, queue them."""
    async with SessionOnDemand(state.sessions) as db:
        flow, admission = await _admit(state, db, who, flow_id, bodies, batch=True)
        with _settling(admission, write=False):
            await turns.apply_multitask(state, db, who.owner, list(bodies))
            runs = await run_service.create_runs(
                db, flow=flow, bodies=list(bodies), owner=who.owner
            )
            await db.commit()
    with _settling(admission):
        await state.run_writer.enqueue(runs)  # one LPUSH; unreachable: the rows go, 503
    log.info("batch.submitted", flow_id=flow.id, runs=len(runs))
    RUNS_SUBMITTED.labels(flow.id).inc(len(runs))
    return runs


async def retry(state: AppState, who: Submitter, *, run_id: str, visible_owner: str | None) -> Run:
    """Submit a finished run again (same input, session, tweaks) as a new run of the flow's
    current version; it passes the same rules as a new submit."""
    async with SessionOnDemand(state.sessions) as db:
        original = await run_service.get_run(db, run_id, owner=visible_owner)
        again = run_service.retry_body(original)
        flow, admission = await _admit(state, db, who, original.flow_id, [again])
        run = run_service.new_run(flow, again, who.owner)
    with _settling(admission):
        await state.run_writer.accept(run)
    log.info("run.resubmitted", run_id=run.id, retry_of=original.id)
    RUNS_SUBMITTED.labels(flow.id).inc()
    return run


async def _admit(
    state: AppState,
    db: AsyncSession,
    who: Submitter,
    flow_id: str,
    bodies: Sequence[RunCreate],
    *,
    batch: bool = False,
) -> tuple[FlowRef, Admission]:
    """Every rule in the module's order; returns the flow the runs will use and their place
    in the queue gauge (settle it when the write is done)."""
    flow = await _check(state, db, who, flow_id, bodies, batch=batch)
    await _spend_rate(state, who, len(bodies))
    admission = await state.queue_gauge.check(
        state.settings, db, flow.id, who.owner, adding=len(bodies)
    )
    return flow, admission


async def check(state: AppState, who: Submitter, *, flow_id: str, body: RunCreate) -> FlowRef:
    """Rules 1-4 for a run to be created later (a schedule's): nothing spent, nothing written.

    Its firings pass the rest when they fire (shared/schedules.py: the flow, the queue caps).
    """
    async with SessionOnDemand(state.sessions) as db:
        return await _check(state, db, who, flow_id, [body])


async def _check(
    state: AppState,
    db: AsyncSession,
    who: Submitter,
    flow_id: str,
    bodies: Sequence[RunCreate],
    *,
    batch: bool = False,
) -> FlowRef:
    settings = state.settings
    if len(bodies) > settings.max_batch:
        raise InvalidRequest(
            f"a batch holds at most {settings.max_batch} inputs, got {len(bodies)}",
            field="inputs",
        )
    for i, body in enumerate(bodies):
        with _naming(f"inputs[{i}]." if batch else ""):
            check_run_limits(body, settings)
            if body.webhook:
                _check_webhook(settings, body.webhook)
    if not re.fullmatch(FLOW_ID_PATTERN, flow_id):  # no flow can have it: no query
        raise FlowNotFound(f"no flow with id {flow_id!r}; GET /v1/flows lists them")
    flow = await flow_service.flow_for_submit(db, flow_id, owner=who.visible_owner)
    for i, body in enumerate(bodies):
        with _naming(f"inputs[{i}]." if batch else ""):
            await flow_service.check_tweaks(db, flow, body.tweaks)
            # File nodes have files, all the submitter's own (api/services/files.py).
            await file_service.check_run_files(
                db, flow, body.tweaks, owner=who.owner, settings=settings
            )
    return flow


@contextmanager
def _settling(admission: Admission, *, write: bool = True) -> Iterator[None]:
    """Settle the queue admission if the block fails; if the block is the write, when it ends
    (until then the gauge counts the admission on top of what the database holds)."""
    try:
        yield
    except BaseException:
        admission.settle()
        raise
    if write:
        admission.settle()


async def _replayed(db: AsyncSession, owner: str, key: str) -> bool:
    """Whether this Idempotency-Key already made a run: a replay answers that run, and its
    session rule (a 409, an interrupt) was applied when it was made, not again now."""
    found = await db.scalar(
        select(Run.id).where(Run.owner == owner, Run.idempotency_key == key).limit(1)
    )
    return found is not None


def _check_webhook(settings: Settings, url: str) -> None:
    try:
        validate_url(settings, url)
    except ValueError as exc:  # urlsplit's own refusal, e.g. an unclosed IPv6 bracket
        raise InvalidRequest(f"webhook is not a URL ({exc})", field="webhook") from exc


async def _spend_rate(state: AppState, who: Submitter, runs: int) -> None:
    """One token per run: the request guard spent one for the request, this the rest."""
    settings = state.settings
    if settings.rate_limit_per_s <= 0 or runs <= 1:
        return
    if runs > settings.rate_limit_burst:
        raise InvalidRequest(
            f"{runs} runs cost {runs} rate-limit tokens and a key holds at most "
            f"{settings.rate_limit_burst} (FLOWFLEET_RATE_LIMIT_BURST); send smaller batches",
            field="inputs",
        )
    try:
        decision = await state.rate_limiter.spend(who.rate_identity, runs - 1)
    except RedisError as exc:
        # Fail open, as the guard does; the write that follows needs Redis and says so.
        log.warning("ratelimit.unavailable", error=error_text(exc))
        return
    if not decision.allowed:
        raise RateLimited(
            f"{runs} runs cost {runs} tokens of {settings.rate_limit_per_s:g}/s "
            f"(burst {settings.rate_limit_burst}); retry after the Retry-After seconds",
            headers=decision.headers(),
        )


@contextmanager
def _naming(prefix: str) -> Iterator[None]:
    """Prefix the field an error names with the batch entry it came from."""
    try:
        yield
    except FlowfleetError as exc:
        if prefix and "field" in exc.extra:
            exc.extra["field"] = prefix + str(exc.extra["field"])
        raise
