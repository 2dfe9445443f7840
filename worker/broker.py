"""The worker's broker transport: kombu's Redis transport, with one client per channel.

kombu sends the commands it issues outside its event loop through a brand-new
``redis.Redis`` each time: one per delivery (recording the message as unacked) and one
per ack. A redis-py client builds its table of some 200 response callbacks when it is
made, a large share of the worker's CPU under load (docs/architecture.md, "Overrides").
A client is safe to share between threads (each command takes a connection from the
pool and gives it back), so one client per channel serves every such command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    _shared_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client is not None:
            yield client
            return
        shared = self._shared_client
        # After a connection error kombu drops its pool and makes a new one: follow it.
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """This transport for plain ``redis://`` brokers; others keep kombu's own."""
    return f"{__name__}:Transport" if broker_url.startswith("redis://") else None
