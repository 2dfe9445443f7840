"""Reading a run's events: replay then follow its stream, wait for its end, or synthesize.

Blocking reads (XREAD BLOCK) use the API's dedicated Redis pool, and no database
connection is held while blocking: the database is read at the start and, unless the
run's done entry carries its committed row, at the end.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from api.state import AppState
from shared import events
from shared.errors import InvalidRequest, RunNotFound
from shared.models import TERMINAL_STATUSES, Run

EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_DATETIME_COLUMNS = frozenset({"started_at", "finished_at", "lease_expires_at"})


async def load_run(state: AppState, run_id: str, owner: str | None) -> Run:
    """The run, read in a short session whose connection goes back to the pool at once."""
    async with state.sessions() as session:
        run = await session.get(Run, run_id)
    if run is None or (owner is not None and run.owner != owner):
        raise RunNotFound(f"no run with id {run_id!r}")
    return run


def parse_event_id(value: str | None) -> str:
    """A Last-Event-ID as a stream id to read after ("0-0" when absent)."""
    if not value:
        return "0-0"
    if not EVENT_ID.match(value.strip()):
        raise InvalidRequest("Last-Event-ID is not an id this API sent", field="Last-Event-ID")
    return value.strip()


def final_events(run: Run) -> list[events.Event]:
    """A finished run's outcome as events, for when its stream expired or never existed."""
    out: list[events.Event] = [("0-1", "status", {"status": run.status})]
    if run.output is not None:
        out.append(("0-2", "output", run.output))
    if run.error_code:
        out.append(("0-2", "error", {"code": run.error_code, "message": run.error_message or ""}))
    out.append(("0-3", "done", {"status": run.status}))
    return out


async def follow(
    state: AppState, run: Run, after: str = "0-0", *, owner: str | None = None
) -> AsyncIterator[events.Event]:
    """Every event after ``after`` (the backlog, then live ones) up to and including done."""
    settings = state.settings
    block_ms = max(1, int(settings.sse_ping_s * 1000))
    terminal = run.status in TERMINAL_STATUSES
    while True:
        batch = await events.read(
            state.redis_blocking if not terminal else state.redis,
            settings,
            run.id,
            after,
            block_ms=None if terminal else block_ms,
        )
        for event in batch:
            yield event
            after = event[0]
            if event[1] == "done":
                return
        if batch:
            continue
        if not terminal:
            # Idle for a while: the worker may have finished while Redis lost its events.
            run = await load_run(state, run.id, owner)
            terminal = run.status in TERMINAL_STATUSES
            continue
        # Terminal and nothing more in the stream: unless the client already saw done,
        # tell it the outcome from the database.
        _, last_event = await events.last_id(state.redis, settings, run.id)
        if last_event != "done":
            for event in final_events(run):
                if after == "0-0" or not after.startswith("0-") or event[0] > after:
                    yield event
        return


async def wait_for(
    state: AppState, run: Run | str, timeout: float, owner: str | None
) -> tuple[Run, bool]:
    """The run (a just-submitted one, or read by id) after waiting at most ``timeout``
    (capped by ``wait_max_s``) seconds for it to finish."""
    timeout = min(timeout, state.settings.wait_max_s)
    return await wait_terminal(state, run, timeout, owner=owner)


async def wait_terminal(
    state: AppState, run: Run | str, timeout: float, *, owner: str | None = None
) -> tuple[Run, bool]:
    """(run, finished): block on the run's stream for done, at most ``timeout`` seconds.

    One database read before (an already finished run answers at once; skipped for a run
    object the caller just created) and one after.
    """
    if isinstance(run, str):
        run = await load_run(state, run, owner)
    if run.status in TERMINAL_STATUSES or timeout <= 0:
        return run, run.status in TERMINAL_STATUSES
    run_id = run.id
    final = await wait_done(state, run_id, timeout)
    if isinstance(final, dict):  # the row as its worker committed it: no read back
        return with_final(run, final), True
    run = await load_run(state, run_id, owner)
    return run, run.status in TERMINAL_STATUSES


async def wait_done(state: AppState, run_id: str, timeout: float) -> dict[str, Any] | bool:
    """Block until the run's done event is published, or ``timeout`` passes (False).

    Returns the run's final columns when the done entry carries them, else True.
    """
    # The end stream holds only `done`: one blocking read wakes once, however many
    # tokens the run streams (reading the event stream would wake on every token).
    reply = await state.redis_blocking.xread(
        {events.end_key(state.settings, run_id): "0-0"},
        count=1,
        block=max(1, int(timeout * 1000)),
    )
    if not reply:
        return False
    return events.final_run(reply) or True


def with_final(run: Run, final: dict[str, Any]) -> Run:
    """``run`` with the final columns a worker published (ISO datetimes parsed)."""
    for column, value in final.items():
        if column in _DATETIME_COLUMNS and value is not None:
            value = datetime.fromisoformat(value)
        setattr(run, column, value)
    return run


async def announce_cancelled(state: AppState, run: Run) -> None:
    """Tell followers that a queued run was cancelled (best effort: the database has it)."""
    try:
        await events.publish(state.redis, state.settings, run.id, "status", {"status": run.status})
        await events.publish(state.redis, state.settings, run.id, "done", {"status": run.status})
    except Exception:  # losing Redis loses live events, never results
        pass


async def flag_cancel(state: AppState, run_id: str) -> None:
    """Ask the worker executing the run to stop it; the flag outlives any run."""
    ttl = int(state.settings.run_timeout_s + 4 * state.settings.lease_s) + 60
    await state.redis.set(events.cancel_key(state.settings, run_id), "1", ex=ttl)
