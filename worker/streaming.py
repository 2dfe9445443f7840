"""Callbacks a run's model calls carry: usage totals and token events, cheap per token.

Every streamed token passes through LangChain's callback manager, so per-token
cost here multiplies by tokens × runs in flight. Measured at 64 runs in flight
(docs/throughput.md): a plain sync handler is run in the loop's default
executor (a handful of threads) for every token, which queued runs for seconds;
one Redis write per token was the worker's largest remaining cost.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler, UsageMetadataCallbackHandler

Publish = Callable[[str], Awaitable[None]]


class InlineUsage(UsageMetadataCallbackHandler):
    """Usage totals, run inline on the loop: its work is a dict update under a lock."""

    run_inline = True


class BatchedTokenPublisher(AsyncCallbackHandler):
    """Publishes `token` events, coalescing tokens that arrive within ``interval_s``.

    The first token goes out at once (time to first token stays visible); later ones
    at most every ``interval_s`` and at the end of each model call, so a reader sees
    the same text, in order, in fewer events.
    """

    raise_error = True  # publishing reads the cancel flag; its RunCancelled must stop the flow
    # Awaited in turn rather than gathered: LangChain otherwise makes a task per handler per
    # token, which measured as a large share of the worker's CPU.
    run_inline = True

    def __init__(self, publish: Publish, interval_s: float = 0.05) -> None:
        self.publish = publish
        self.interval_s = interval_s
        self._buffer: list[str] = []
        self._last = 0.0

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:  # type: ignore[override]
        if not token:
            return
        self._buffer.append(token)
        if time.monotonic() - self._last >= self.interval_s:
            await self.flush()

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        await self.flush()

    async def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Publish what is buffered as one event."""
        if not self._buffer:
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        self._last = time.monotonic()
        await self.publish(text)
