"""Execute one run: claim it, run its flow, record the result exactly once.

Idempotent by construction: a run is claimed with a conditional UPDATE (queued,
or running with an expired lease), and the result is written only while this
worker still holds the lease. A redelivered message for a finished run, or for
a run another worker is executing, does nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler, UsageMetadataCallbackHandler
from sqlalchemy import BindParameter, Float, and_, bindparam, insert, or_, select, update

from flows.base import CompiledFlow, FlowInput, FlowResult, FlowValidationError, HistoryMessage
from flows.retry import run_deadline
from flows.routing import BackendNotAllowed
from shared import events
from shared.db_clock import now_plus
from shared.errors import FlowError, RunFailure, RunTimeout
from shared.events import EventType
from shared.logging import error_text, get_logger
from shared.models import INGEST_FLAG, RUNS, FlowVersion, Run, SessionMessage, utcnow
from shared.queue import publish_runs
from shared.run_status import RunStatus
from shared.session_order import next_turn, turn_is_free
from shared.telemetry import propagation_headers
from worker import cancel, metrics, response_cache, webhooks
from worker.backend_errors import as_run_failure
from worker.context import WorkerContext
from worker.delivery import durably, exhausted
from worker.files import RunFiles
from worker.model_calls import ModelCalls
from worker.progress_events import ProgressEvents
from worker.streaming import BatchedTokenPublisher, InlineUsage
from worker.tool_events import ToolEvents

log = get_logger("worker.execute")
HISTORY_LIMIT = 200


async def _publish(
    ctx: WorkerContext,
    run_id: str,
    event: str,
    data: dict[str, Any],
    final: dict[str, Any] | None = None,
) -> None:
    # Events are best effort: losing Redis loses live events, never results.
    try:
        await events.publish(ctx.events, ctx.settings, run_id, event, data, final=final)  # type: ignore[arg-type]
    except Exception as exc:
        log.warning("run.event_lost", run_id=run_id, event_type=event, error=error_text(exc))


def _param(column: str, name: str | None = None) -> BindParameter[Any]:
    """A bound parameter typed as the runs column (so its type's conversions apply)."""
    return bindparam(f"p_{name or column}", type_=RUNS.c[column].type)


def _params(values: dict[str, Any]) -> dict[str, Any]:
    return {f"p_{column}": value for column, value in values.items()}


# The claim and the finish are built once and executed with parameters: building an ORM
# UPDATE per run (coercing each value) is a real share of the worker's event loop. They are
# Core statements on the runs table, run on a connection, which costs less CPU than an
# ORM-enabled UPDATE in a session (docs/architecture.md, "Measurements").
_CLAIM = (
    update(RUNS)
    .where(
        RUNS.c.id == _param("id"),
        or_(
            RUNS.c.status == RunStatus.QUEUED,
            # Leases are judged by the database's clock (shared/db_clock.py), never ours.
            and_(RUNS.c.status == RunStatus.RUNNING, RUNS.c.lease_expires_at < now_plus(0)),
        ),
        # One turn at a time per session: a run whose session has an earlier turn unfinished
        # is not taken; its message is dropped and it waits, queued, for that turn's end to
        # enqueue it again (shared/session_order.py).
        turn_is_free(RUNS),
    )
    .values(
        status=RunStatus.RUNNING,
        started_at=_param("started_at", "now"),
        attempts=RUNS.c.attempts + 1,
        lease_owner=_param("lease_owner", "owner"),
        lease_expires_at=now_plus(bindparam("p_lease_s", type_=Float)),
    )
    .returning(*RUNS.c)
)
_FINISH_COLUMNS = (
    "status",
    "finished_at",
    "lease_owner",
    "lease_expires_at",
    "worker",
    "usage",
    "output",
    "error_code",
    "error_message",
    "cached",
)
_FINISH = (
    update(RUNS)
    .where(
        RUNS.c.id == _param("id"),
        RUNS.c.status == RunStatus.RUNNING,
        RUNS.c.lease_owner == _param("lease_owner", "owner"),
    )
    .values({column: _param(column) for column in _FINISH_COLUMNS})
)
# Who finished the run, and when: a finish that matched no row reads this back to tell
# "my commit landed but its acknowledgement was lost" from "another worker took it over".
_FINISHED = select(RUNS.c.status, RUNS.c.worker, RUNS.c.finished_at).where(
    RUNS.c.id == _param("id")
)
_ADD_TURNS = insert(SessionMessage)
_HISTORY = (
    select(SessionMessage.role, SessionMessage.content)
    # A session id is scoped to its owner: another key's history never leaks in.
    .where(SessionMessage.session_id == bindparam("session_id"))
    .where(SessionMessage.owner == bindparam("owner"))
    .order_by(SessionMessage.id.desc())
    .limit(HISTORY_LIMIT)
)


async def claim_run(ctx: WorkerContext, run_id: str) -> tuple[Run, list[HistoryMessage]] | None:
    """Take the run's lease if it is free, then load its history (committed turns)."""
    now = utcnow()
    async with ctx.leases.begin() as conn:
        # One round trip claims and reads the run (UPDATE ... RETURNING), committing itself.
        row = (
            await conn.execute(
                _CLAIM,
                {
                    "p_id": run_id,
                    "p_now": now,
                    "p_owner": ctx.worker_id,
                    "p_lease_s": ctx.settings.lease_s,
                },
            )
        ).first()
        if row is None:
            return None
        run = Run(**row._mapping)
        history: list[HistoryMessage] = []
        if run.session_id:
            turns = await conn.execute(_HISTORY, {"session_id": run.session_id, "owner": run.owner})
            history = [HistoryMessage(*turn) for turn in reversed(turns.all())]  # type: ignore[arg-type]
    return run, history


async def compiled_flow(ctx: WorkerContext, run: Run) -> tuple[CompiledFlow, bool]:
    """The run's compiled flow, and whether it came from the cache (no parsing, no compiling)."""
    compiled = ctx.flows.lookup(run.flow_id, run.flow_version)
    if compiled is not None:
        return compiled, True
    async with ctx.sessions() as session:
        found = (
            await session.execute(
                select(FlowVersion.kind, FlowVersion.source).where(
                    FlowVersion.flow_id == run.flow_id, FlowVersion.version == run.flow_version
                )
            )
        ).first()
    if found is None:
        raise FlowError(f"flow version {run.flow_version} is missing")
    # Runs that started together on a cold worker all waited on that read: the first one
    # back compiles (synchronously, so nothing interleaves), the others find its result.
    compiled = ctx.flows.lookup(run.flow_id, run.flow_version)
    if compiled is not None:
        return compiled, True
    compiled = ctx.flows.compile(run.flow_id, run.flow_version, found.kind, found.source)  # type: ignore[arg-type]
    return compiled, False


async def finish_run(
    ctx: WorkerContext,
    run: Run,
    *,
    result: FlowResult | None = None,
    error: RunFailure | None = None,
    usage: dict[str, Any] | None = None,
    status: str | None = None,
    cached: bool = False,
    finished_at: datetime | None = None,
) -> dict[str, Any] | None:
    """Record the outcome, and on success the session's two messages, in one transaction.

    Returns the columns written, or None when this worker no longer holds the lease
    (another one took the run over), in which case nothing is written. Retried with the
    same ``finished_at`` after a lost commit acknowledgement, it finds its own write and
    returns it, so the run's `done` event and webhook still go out.
    """
    status = status or (RunStatus.SUCCEEDED if error is None else RunStatus.FAILED)
    values: dict[str, Any] = {
        "status": status,
        "finished_at": finished_at or utcnow(),
        "lease_owner": None,
        "lease_expires_at": None,
        "worker": ctx.worker_id,
        "usage": usage,
        "output": result.as_json() if result is not None else None,
        "error_code": error.code if error else None,
        "error_message": error.message if error else None,
        "cached": cached,
    }
    params = {"p_id": run.id, "p_owner": ctx.worker_id, **_params(values)}
    turns: list[dict[str, Any]] = []
    if status == RunStatus.SUCCEEDED and run.session_id and result is not None:
        said = (("user", run.input or ""), ("assistant", result.text or ""))
        turns = [
            {
                "session_id": run.session_id,
                "owner": run.owner,
                "run_id": run.id,
                "role": r,
                "content": c,
            }
            for r, c in said
        ]
    # A lone UPDATE commits by itself; with the session's turns, one transaction holds both.
    async with (ctx.engine if turns else ctx.statements).begin() as conn:
        if (await conn.execute(_FINISH, params)).rowcount != 1:
            row = (await conn.execute(_FINISHED, {"p_id": run.id})).first()
            mine = row is not None and tuple(row) == (status, ctx.worker_id, values["finished_at"])
            if mine:
                log.info("run.finish_already_committed", run_id=run.id)
            return values if mine else None
        if turns:
            await conn.execute(_ADD_TURNS, turns)
    return values


def _usage(handler: UsageMetadataCallbackHandler) -> dict[str, Any] | None:
    if not handler.usage_metadata:
        return None
    totals = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    for usage in handler.usage_metadata.values():
        for key in totals:
            totals[key] += int(usage.get(key, 0) or 0)  # type: ignore[call-overload]
    return {**totals, "by_model": dict(handler.usage_metadata)}


@dataclass
class Outcome:
    """What running a flow came to, before it is recorded."""

    status: RunStatus
    result: FlowResult | None
    error: RunFailure | None
    usage: dict[str, Any] | None
    cached: bool  # the response cache answered
    from_cache: bool  # the compiled flow came from the flow cache


async def execute_run(ctx: WorkerContext, run_id: str) -> str:
    """Run one run end to end; returns its outcome ("skipped" when not ours to run)."""
    # A database outage at claim time must not drop the delivery (the message is acked).
    claimed = await durably(
        lambda: claim_run(ctx, run_id),
        run_id=run_id,
        within_s=ctx.settings.finish_retry_s,
        what="claim",
    )
    if claimed is None:
        log.info("run.skipped", run_id=run_id)
        return "skipped"
    run, history = claimed
    started = time.perf_counter()
    ctx.in_flight.add(run_id)
    metrics.run_started(run.flow_id, run.created_at, run.started_at)
    try:
        outcome = await run_flow(ctx, run, history)
    except asyncio.CancelledError:
        ctx.in_flight.discard(run_id)  # shutdown took it back (worker/shutdown.py)
        raise
    return await record_outcome(ctx, run, outcome, started)


async def run_flow(ctx: WorkerContext, run: Run, history: list[HistoryMessage]) -> Outcome:
    """Run a claimed run's flow (or answer from the response cache); never raises a failure."""
    run_id = run.id
    # Not awaited here: it leaves in one Redis batch with the run's first cancel check
    # instead of a round trip of its own; awaited before the run's last events.
    announced = asyncio.ensure_future(
        _publish(
            ctx, run_id, EventType.STATUS, {"status": RunStatus.RUNNING, "attempt": run.attempts}
        )
    )
    usage = InlineUsage()
    tokens = BatchedTokenPublisher(
        lambda text: cancel.publish_token(ctx, run_id, text), ctx.settings.token_flush_s
    )
    result: FlowResult | None = None
    error: RunFailure | None = exhausted(run, ctx.settings)
    cancelled = False
    from_cache = False
    cached = False
    run_deadline.set(time.monotonic() + ctx.settings.run_timeout_s)
    try:
        if error is not None:
            raise error
        # An ingest run (POST /v1/flows/{id}/ingest) fills the flow's stores and nothing else.
        ingest_only = bool((run.meta or {}).get(INGEST_FLAG))
        result = None if ingest_only else await response_cache.lookup(ctx, run)
        cached = result is not None
        if result is None:
            compiled, from_cache = await compiled_flow(ctx, run)
            flow_input = FlowInput(
                input=run.input,
                session_id=run.session_id,
                history=history,
                tweaks=run.tweaks or {},
                files=RunFiles(ctx.sessions, run.owner),  # the run owner's files only
                ingest_only=ingest_only,
            )
            callbacks: list[BaseCallbackHandler] = [
                usage,
                tokens,
                cancel.CancelCheck(ctx, run_id),
                metrics.LLMMetrics(),
                ToolEvents(ctx, run_id, run.attempts),
                ProgressEvents(ctx, run_id),
            ]
            if ctx.settings.record_model_calls:
                callbacks.append(ModelCalls(ctx, run_id, run.attempts))
            config = {
                "callbacks": callbacks,
                # owner: RAG collections are scoped to the key that runs (flows/vectorstores.py).
                "metadata": {"run_id": run_id, "flow_id": run.flow_id, "owner": run.owner},
                "run_name": f"flowfleet:{run.flow_id}",
            }
            result = await cancel.run_cancellable(
                ctx,
                run_id,
                asyncio.wait_for(compiled.ainvoke(flow_input, config), ctx.settings.run_timeout_s),
            )
            if not ingest_only:
                await response_cache.store(ctx, run, result)
    except cancel.RunCancelled:
        cancelled = True
    except TimeoutError:
        error = RunTimeout(f"the run took longer than {ctx.settings.run_timeout_s:g} s")
    except (FlowValidationError, BackendNotAllowed) as exc:
        error = FlowError(str(exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        error = as_run_failure(exc)
    await announced
    await tokens.close()  # its last token events go before the run's final ones
    if cancelled:
        return Outcome(RunStatus.CANCELLED, None, None, _usage(usage), cached, from_cache)
    status = RunStatus.SUCCEEDED if error is None else RunStatus.FAILED
    return Outcome(status, result, error, _usage(usage), cached, from_cache)


async def record_outcome(ctx: WorkerContext, run: Run, outcome: Outcome, started: float) -> str:
    """Write the outcome once (durably), then its events, log line and webhook."""
    run_id = run.id
    finished_at = utcnow()  # one value for every try: it identifies this finish's write
    try:
        # Still in flight (lease renewed) while the result write rides out a database outage.
        written = await durably(
            lambda: finish_run(
                ctx,
                run,
                result=outcome.result,
                error=outcome.error,
                usage=outcome.usage,
                status=outcome.status.value,
                cached=outcome.cached,
                finished_at=finished_at,
            ),
            run_id=run_id,
            within_s=ctx.settings.finish_retry_s,
        )
    except BaseException:
        metrics.run_finished(run.flow_id, "unrecorded", time.perf_counter() - started)
        raise
    finally:
        ctx.in_flight.discard(run_id)
    status = str(outcome.status) if written is not None else "lease_lost"
    if written is not None and run.session_id:
        await wake_next_turn(ctx, run)
    metrics.run_finished(run.flow_id, status, time.perf_counter() - started)
    if written is not None:
        await _publish_finals(ctx, run, written, outcome.status)
    log.info(
        "run.finished",
        run_id=run_id,
        flow_id=run.flow_id,
        status=status,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        error=outcome.error.code if outcome.error else None,
        flow_cache="hit" if outcome.from_cache else "compiled",
    )
    if written is not None:
        await webhooks.schedule(ctx, run)
    return status


async def wake_next_turn(ctx: WorkerContext, run: Run) -> None:
    """Enqueue the session's next turn now that this run's end is committed.

    Its claim was refused while this run was unfinished (its message is gone), so nothing
    else would bring it before the sweep. If this fails (Redis away), the sweep's
    re-enqueue of queued runs nobody holds brings it later (worker/deliveries.py).
    """
    assert run.session_id is not None
    try:
        async with ctx.statements.connect() as conn:
            waiting = await next_turn(conn, run.owner, run.session_id)
        if waiting is not None:
            await publish_runs(ctx.redis, ctx.settings, [(waiting, propagation_headers())])
            log.info("session.next_turn", run_id=waiting, after=run.id)
    except Exception as exc:
        log.warning("session.next_turn_failed", after=run.id, error=error_text(exc))


async def _publish_finals(
    ctx: WorkerContext, run: Run, written: dict[str, Any], status: RunStatus
) -> None:
    # The events say what was committed (the output is not built a second time).
    finals: list[tuple[str, dict[str, Any]]] = []
    if written["output"] is not None:
        finals.append((EventType.OUTPUT, written["output"]))
    if written["error_code"] is not None:
        finals.append(
            (EventType.ERROR, {"code": written["error_code"], "message": written["error_message"]})
        )
    # Issued together, they leave in one Redis batch, in order: a waiting client hears
    # `done` one round trip after the commit, not one per event. `done` carries the row
    # as committed, so the waiter answers without reading it back.
    final = {**written, "started_at": run.started_at, "attempts": run.attempts}
    await asyncio.gather(
        *(_publish(ctx, run.id, event, data) for event, data in finals),
        _publish(ctx, run.id, EventType.DONE, {"status": status}, final=final),
    )
