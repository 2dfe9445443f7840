"""Fixtures for run events: an API whose queue no worker reads, so its runs stay queued."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.support.stack import Proc, Stack, start_api


@pytest.fixture(scope="module")
def idle_api(stack: Stack) -> Iterator[Proc]:
    """A second API on the same database and Redis, enqueueing where no worker listens."""
    env = {**stack.env, "FLOWFLEET_QUEUE_NAME": stack.env["FLOWFLEET_QUEUE_NAME"] + "-idle"}
    api = start_api(env)
    yield api
    api.stop()


@pytest.fixture
def idle_client(idle_api: Proc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=idle_api.url, timeout=30) as c:
        yield c


@pytest.fixture
def redis_client(stack: Stack) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(stack.env["FLOWFLEET_REDIS_URL"])
    yield r
    r.close()


def events_key(stack: Stack, run_id: str) -> str:
    return f"{stack.env['FLOWFLEET_REDIS_NAMESPACE']}run:{run_id}:events"
