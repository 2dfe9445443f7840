"""The worker's kombu transport shares one Redis client per channel, and still delivers,
acks and follows kombu's pool when it is replaced."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection

from worker.broker import Channel, transport_for


@pytest.fixture
def connection(infra: dict[str, str]) -> Iterator[Connection]:
    url = infra["redis_url"]
    transport = transport_for(url)
    assert transport == "worker.broker:Transport"
    with Connection(url, transport=transport) as conn:
        yield conn


def test_the_worker_app_consumes_through_this_transport() -> None:
    from shared.settings import Settings
    from worker.celery_app import create_worker_app

    app = create_worker_app(Settings(_env_file=None)).celery  # type: ignore[call-arg]
    with app.connection_for_read() as conn:
        assert isinstance(conn.default_channel, Channel)


def test_only_plain_redis_urls_take_it() -> None:
    assert transport_for("rediss://cache:6380/0") is None
    assert transport_for("sentinel://s1:26379") is None


def test_commands_outside_the_event_loop_share_one_client(connection: Connection) -> None:
    channel = connection.default_channel
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second
        assert first.connection_pool is channel.pool
    # After a connection error kombu replaces its pool; the next command follows it.
    channel._disconnect_pools()
    with channel.conn_or_acquire() as third:
        assert third is not first
        assert third.connection_pool is channel.pool
        assert third.ping()


def test_a_message_is_recorded_unacked_until_acked(
    connection: Connection, infra: dict[str, str]
) -> None:
    name = f"test-broker-{uuid.uuid4().hex[:8]}"
    raw = redis.Redis.from_url(infra["redis_url"])
    queue = connection.SimpleQueue(name)
    try:
        queue.put({"run": "r1"})
        message = queue.get(timeout=5)
        assert message.payload == {"run": "r1"}
        # kombu's ack emulation: a delivered message waits in `unacked` until its ack.
        assert raw.hlen("unacked") >= 1
        tag = message.delivery_tag
        assert raw.hexists("unacked", tag)
        message.ack()
        assert not raw.hexists("unacked", tag)
        assert raw.zscore("unacked_index", tag) is None
    finally:
        queue.close()
        raw.delete(name)
