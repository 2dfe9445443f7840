"""Coalesce the worker's small Redis commands into one pipeline per round trip.

Hundreds of runs in flight each append token events and read their cancel flag;
sent one by one that is a socket write and a parse per command, the worker's
largest cost after the LLM client itself. Commands issued while a pipeline is on
the wire wait for the next one, so an idle worker adds no latency and a busy one
sends one write for many runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

Command = tuple[str, tuple[Any, ...], dict[str, Any], "asyncio.Future[Any]"]


class RedisBatcher:
    """Queues commands from every coroutine and flushes them together."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: list[Command] = []
        self._flusher: asyncio.Task[None] | None = None

    def submit(self, name: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((name, args, kwargs, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            pipe = self.redis.pipeline(transaction=False)
            for name, args, kwargs, _ in batch:
                getattr(pipe, name)(*args, **kwargs)
            try:
                results = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # the connection failed: every command in it failed
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def pipeline(self, transaction: bool = False) -> BatchedPipeline:
        """A pipeline-shaped view: its commands ride in the shared batch."""
        return BatchedPipeline(self)

    async def xadd(self, *args: Any, **kwargs: Any) -> Any:
        return await self.submit("xadd", *args, **kwargs)

    async def exists(self, *args: Any) -> Any:
        return await self.submit("exists", *args)

    async def expire(self, *args: Any) -> Any:
        return await self.submit("expire", *args)


class BatchedPipeline:
    """Collects commands like ``redis.pipeline()`` and runs them in the shared batch."""

    def __init__(self, batcher: RedisBatcher) -> None:
        self.batcher = batcher
        self._commands: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    async def __aenter__(self) -> BatchedPipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._commands.clear()

    def __getattr__(self, name: str) -> Any:
        def queue(*args: Any, **kwargs: Any) -> BatchedPipeline:
            self._commands.append((name, args, kwargs))
            return self

        return queue

    async def execute(self) -> list[Any]:
        futures = [self.batcher.submit(n, *a, **k) for n, a, k in self._commands]
        self._commands = []
        return list(await asyncio.gather(*futures))
