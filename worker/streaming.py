"""Callbacks a run's model calls carry: usage totals and token events, cheap per token.

Every streamed token passes through LangChain's callback manager, so per-token
cost here multiplies by tokens × runs in flight. Measured at 64 runs in flight
(docs/throughput.md): a plain sync handler is run in the loop's default
executor (a handful of threads) for every token, which queued runs for seconds;
one Redis write per token was the worker's largest remaining cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler, UsageMetadataCallbackHandler

Publish = Callable[[str], Awaitable[None]]


class InlineUsage(UsageMetadataCallbackHandler):
    """Usage totals, run inline on the loop: its work is a dict update under a lock."""

    run_inline = True


class BatchedTokenPublisher(AsyncCallbackHandler):
    """Publishes `token` events in order without holding up the model's stream.

    Each token is handed to one sender task per run; tokens that arrive while an event
    is on its way to Redis leave together in the next one. An idle worker publishes
    every token at once (a round trip is well under a token's interval); a loaded one,
    whose round trips take longer, sends fewer, larger events, so the Redis work per
    run falls as load rises. ``interval_s`` > 0 also spaces events at least that far
    apart. A reader sees the same text, in order.
    """

    raise_error = True  # publishing reads the cancel flag; its RunCancelled must stop the flow
    # Awaited in turn rather than gathered: LangChain otherwise makes a task per handler per
    # token, a large share of the worker's CPU.
    run_inline = True

    def __init__(self, publish: Publish, interval_s: float = 0.0) -> None:
        self.publish = publish
        self.interval_s = interval_s
        self._buffer: list[str] = []
        self._last = 0.0
        self._sender: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None  # what a publish raised (RunCancelled)

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:  # type: ignore[override]
        if self._failure is not None:
            raise self._failure
        if not token:
            return
        self._buffer.append(token)
        self._start_sender()

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        await self.drain()

    async def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        await self.drain()

    def _start_sender(self) -> None:
        # One sender per run; a new one only once the last has emptied the buffer and ended.
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send())

    async def _send(self) -> None:
        while self._buffer and self._failure is None:
            if (wait := self._last + self.interval_s - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            text = "".join(self._buffer)
            self._buffer.clear()
            self._last = time.monotonic()
            try:
                await self.publish(text)
            except Exception as exc:
                self._failure = exc

    async def drain(self) -> None:
        """Wait until every token so far is published; raise what a publish raised."""
        if self._buffer:
            self._start_sender()
        if self._sender is not None:
            await self._sender
        if self._failure is not None:
            raise self._failure

    async def close(self) -> None:
        """At the run's end, whatever happened: no token event may follow its last events."""
        with contextlib.suppress(Exception):
            await self.drain()
