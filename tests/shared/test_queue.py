"""The API's async publish writes the same message Celery's send_task would, and a worker
executes runs enqueued that way (the rest of the suite submits through it)."""

from __future__ import annotations

import base64
import json
import uuid

import redis
from redis.asyncio import Redis

from shared.queue import make_celery, publish_runs
from shared.settings import Settings
from tests.support.stack import TEST_REDIS

# Fields that differ on every message (ids, the sending process).
VARYING = {"id", "root_id", "origin", "correlation_id", "reply_to", "delivery_tag"}


def _normalised(raw: bytes) -> dict[str, object]:
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    for part in ("headers", "properties"):
        message[part] = {k: v for k, v in message[part].items() if k not in VARYING}
    return message


async def test_publish_runs_writes_what_send_task_writes() -> None:
    queue = f"fftest-{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=TEST_REDIS, queue_name=queue)
    sync = redis.Redis.from_url(TEST_REDIS)
    try:
        make_celery(settings).send_task(
            "flowfleet.run", args=["run-1"], headers={"run_id": "run-1"}
        )
        client = Redis.from_url(TEST_REDIS)
        await publish_runs(client, settings, [("run-1", {})])
        await client.aclose()
        ours, celerys = sync.lrange(queue, 0, -1)  # LPUSH: newest first
    finally:
        sync.delete(queue, f"_kombu.binding.{queue}")
    assert _normalised(ours) == _normalised(celerys)
