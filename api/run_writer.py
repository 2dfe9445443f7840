"""Accepting runs: the runs submitted together are written with one INSERT, one COMMIT and
one LPUSH (group commit).

Accepting a run costs an INSERT, a COMMIT and an LPUSH. Done per request, each is a round
trip with its own fixed cost in this process (a pooled connection, SQLAlchemy's unit of
work, psycopg, redis-py) plus a WAL flush in PostgreSQL, which caps a process's accepted
runs per second (docs/architecture.md, "Measurements"). Here the runs submitted while a
write is on the wire wait for it and go into the next write together. An idle API writes a
run at once, as a batch of one: nothing waits for a timer.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db_errors import client_error, is_bad_data
from shared.errors import BackendUnavailable
from shared.logging import error_text, get_logger
from shared.models import RUNS, Run
from shared.queue import publish_runs
from shared.settings import Settings
from shared.telemetry import propagation_headers

log = get_logger("api.run_writer")

# What a new run's row holds (api.services.runs.new_run sets each); the rest start NULL.
_NEW_RUN_COLUMNS = (
    "id",
    "flow_id",
    "flow_version",
    "session_id",
    "owner",
    "input",
    "tweaks",
    "meta",
    "status",
    "attempts",
    "cached",
    "created_at",
    "webhook_url",
)
_INSERT_RUNS = insert(RUNS)

# A run, the propagation headers of the request that submitted it, and its waiter.
Pending = tuple[Run, dict[str, str], "asyncio.Future[None]"]


class RunWriter:
    """Writes and queues accepted runs, many per round trip under load."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        settings: Settings,
        max_batch: int = 256,
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.settings = settings
        self.max_batch = max_batch
        self._pending: list[Pending] = []
        self._drainer: asyncio.Task[None] | None = None

    async def accept(self, run: Run) -> None:
        """Store ``run`` and queue it. If either store fails, nothing of it is kept and the
        error is raised: a 4xx for a value the database refuses, else the API answers 503."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Taken here, in the request's context: the shared write runs in another task.
        self._pending.append((run, propagation_headers(), future))
        if self._drainer is None:
            # Its own task: a client that hangs up must not cancel other clients' writes.
            self._drainer = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._write(batch)
        finally:
            self._drainer = None

    async def _write(self, batch: list[Pending]) -> None:
        stored = await self._store(batch)
        if not stored:
            return
        runs = [run for run, _, _ in stored]
        try:
            await self.enqueue(runs, [headers for _, headers, _ in stored])
        except BackendUnavailable as exc:
            _settle(stored, error=exc)
            return
        _settle(stored)

    async def _store(self, batch: list[Pending]) -> list[Pending]:
        """Insert the batch's rows; settles each that fails and returns those stored.

        The rows share one statement, so one request's value the database refuses (a NUL
        byte, an over-long string) fails them all: then each row is written on its own, and
        only the request whose value it was is refused (4xx). An outage fails them all (503).
        """
        try:
            await self._insert(batch)
            return batch
        except Exception as exc:
            if len(batch) == 1 or not is_bad_data(exc):
                _settle(batch, error=client_error(exc) or exc)
                return []
            log.warning("runs.group_write_split", runs=len(batch), error=error_text(exc))
        stored: list[Pending] = []
        for pending in batch:
            try:
                await self._insert([pending])
            except Exception as exc:
                _settle([pending], error=client_error(exc) or exc)
            else:
                stored.append(pending)
        return stored

    async def _insert(self, batch: list[Pending]) -> None:
        # A Core INSERT of the rows: the ORM's unit of work (identity map, events, per-object
        # bookkeeping) is a real share of a submit's CPU, for objects nothing reads back.
        rows = [
            {column: getattr(run, column) for column in _NEW_RUN_COLUMNS} for run, _, _ in batch
        ]
        async with self.sessions() as session:
            await session.execute(_INSERT_RUNS, rows)
            await session.commit()

    async def enqueue(self, runs: list[Run], headers: list[dict[str, str]] | None = None) -> None:
        """Queue committed runs with one LPUSH (``headers``: each run's propagation headers,
        by default the calling request's); if the queue is unreachable, delete their rows
        and raise ``BackendUnavailable``."""
        carried = headers or [propagation_headers()] * len(runs)
        try:
            await publish_runs(
                self.redis, self.settings, [(r.id, h) for r, h in zip(runs, carried, strict=True)]
            )
        except Exception as exc:
            log.warning("runs.enqueue_failed", runs=len(runs), error=error_text(exc))
            await self._forget(runs)
            raise BackendUnavailable("the queue is unreachable; the run was not accepted") from exc

    async def _forget(self, runs: list[Run]) -> None:
        # The rows must not outlive a failed enqueue: their clients are told nothing was taken.
        try:
            async with self.sessions() as session:
                await session.execute(delete(Run).where(Run.id.in_([run.id for run in runs])))
                await session.commit()
        except Exception:
            # If even that fails the rows stay `queued` and the sweep enqueues them later.
            log.warning("runs.unqueued_rows_kept", runs=len(runs))


def _settle(batch: list[Pending], error: BaseException | None = None) -> None:
    for *_, future in batch:
        if future.done():  # its client hung up; the run is written all the same
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
