"""Cancelling a running run: the API sets a flag in Redis, the worker notices and stops.

The flag is checked with every token event (piggybacked on the event's XADD, so no
extra round-trip), at the start of every LangChain step, and by a slow poll that
covers long silences (waiting for a first token, a non-streaming call).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler

from shared import events
from shared.events import EventType
from shared.logging import error_text, get_logger
from worker.context import WorkerContext

log = get_logger("worker.cancel")
T = TypeVar("T")


class RunCancelled(Exception):
    """Raised inside a run's flow when its cancel flag is set."""


async def is_cancelled(ctx: WorkerContext, run_id: str) -> bool:
    """Whether someone asked to cancel this run (False when Redis is away: run on)."""
    try:
        return bool(await ctx.events.exists(events.cancel_key(ctx.settings, run_id)))
    except Exception as exc:
        log.warning("run.cancel_check_failed", run_id=run_id, error=error_text(exc))
        return False


async def publish_token(ctx: WorkerContext, run_id: str, text: str) -> None:
    """Append a token event and read the cancel flag in the same round-trip."""
    settings = ctx.settings
    data = {"text": text, "ts": time.time()}
    try:
        async with ctx.events.pipeline(transaction=False) as pipe:
            pipe.xadd(
                events.stream_key(settings, run_id),
                {"event": EventType.TOKEN, "data": json.dumps(data)},
                maxlen=settings.events_maxlen,
                approximate=True,
            )
            pipe.exists(events.cancel_key(settings, run_id))
            _, cancelled = await pipe.execute()
    except Exception as exc:
        # Events are best effort: losing Redis loses live events, never results.
        log.warning(
            "run.event_lost", run_id=run_id, event_type=EventType.TOKEN, error=error_text(exc)
        )
        return
    if cancelled:
        raise RunCancelled(run_id)


class CancelCheck(AsyncCallbackHandler):
    """Stops the flow between steps once the run's cancel flag is set.

    Steps that start within ``STEP_CHECK_S`` of the last check go on without another:
    a flow's quick steps (input, prompt, parser) would each cost a Redis round trip, to
    notice a cancel a few ms sooner.
    """

    STEP_CHECK_S = 0.05

    raise_error = True  # LangChain swallows handler errors unless told otherwise
    run_inline = True  # awaited in turn, no task per event (see worker/streaming.py)
    # Not called for tokens and model ends (tokens check the flag as they are published).
    ignore_llm = True

    def __init__(self, ctx: WorkerContext, run_id: str) -> None:
        self.ctx = ctx
        self.run_id = run_id
        # Made just before run_cancellable's own check, which counts as the first.
        self._checked_at = time.monotonic()

    async def _check(self) -> None:
        if time.monotonic() - self._checked_at < self.STEP_CHECK_S:
            return
        self._checked_at = time.monotonic()
        if await is_cancelled(self.ctx, self.run_id):
            raise RunCancelled(self.run_id)

    async def on_chain_start(
        self, serialized: dict[str, Any], inputs: dict[str, Any], *, run_id: UUID, **kwargs: Any
    ) -> None:
        await self._check()

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: Any, *, run_id: UUID, **kwargs: Any
    ) -> None:
        await self._check()


async def run_cancellable(ctx: WorkerContext, run_id: str, work: Awaitable[T]) -> T:
    """Await ``work``; cancel it and raise RunCancelled if the flag appears meanwhile.

    The first check travels while the work starts instead of before it: awaited first, it
    puts a Redis round trip in every run's latency, to stop a run
    cancelled in the moment between its claim and its first step before that step began
    rather than just after.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            if await is_cancelled(ctx, run_id):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise RunCancelled(run_id)
            done, _ = await asyncio.wait({task}, timeout=ctx.settings.cancel_poll_s)
            if done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
