"""A waiter answers from the run's done entry: the row as committed, with no read back."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
from redis.asyncio import Redis

from api.services.events import wait_terminal
from shared import events
from shared.models import Run, utcnow
from shared.settings import Settings
from tests.support.stack import Stack


def test_a_waited_answer_is_the_row_the_worker_committed(client: httpx.Client) -> None:
    waited = client.post("/v1/flows/prompt/runs?wait=30", json={"input": "compare me"})
    assert waited.status_code == 200
    assert waited.json()["status"] == "succeeded"
    # Every field, as a later read of the row gives it.
    assert waited.json() == client.get(f"/v1/runs/{waited.json()['id']}").json()
    again = client.get(f"/v1/runs/{waited.json()['id']}/wait?timeout=5")
    assert again.json() == waited.json()


async def test_wait_takes_the_done_entrys_row_without_reading_the_database(stack: Stack) -> None:
    settings = Settings(
        redis_url=stack.env["FLOWFLEET_REDIS_URL"],
        redis_namespace=stack.env["FLOWFLEET_REDIS_NAMESPACE"],
    )
    redis = Redis.from_url(settings.redis_url)

    def no_database() -> Any:
        raise AssertionError("the waiter read the database")

    state = SimpleNamespace(settings=settings, redis_blocking=redis, sessions=no_database)
    run = Run(id="not-in-the-database", flow_id="prompt", status="queued", created_at=utcnow())
    finished = utcnow()
    final = {"status": "succeeded", "output": {"text": "hi"}, "finished_at": finished.isoformat()}
    try:
        await events.publish(redis, settings, run.id, "done", {"status": "succeeded"}, final=final)
        answered, done = await wait_terminal(state, run, 5, owner=None)  # type: ignore[arg-type]
    finally:
        await redis.delete(events.stream_key(settings, run.id), events.end_key(settings, run.id))
        await redis.aclose()
    assert done
    assert answered.status == "succeeded"
    assert answered.output == {"text": "hi"}
    assert answered.finished_at == finished


async def test_a_long_output_is_not_held_twice_its_waiters_read_the_row(stack: Stack) -> None:
    settings = Settings(
        redis_url=stack.env["FLOWFLEET_REDIS_URL"],
        redis_namespace=stack.env["FLOWFLEET_REDIS_NAMESPACE"],
    )
    redis = Redis.from_url(settings.redis_url)
    carried: dict[int, bool] = {}
    try:
        for size in (10, events.FINAL_MAX_BYTES + 1):
            run_id = f"final-{size}"
            final = {"status": "succeeded", "output": {"text": "x" * size}}
            await events.publish(redis, settings, run_id, "done", {"status": "ok"}, final=final)
            reply = await redis.xread({events.end_key(settings, run_id): "0-0"}, count=1)
            carried[size] = events.final_run(reply) is not None
            keys = events.stream_key(settings, run_id), events.end_key(settings, run_id)
            await redis.delete(*keys)
    finally:
        await redis.aclose()
    assert carried == {10: True, events.FINAL_MAX_BYTES + 1: False}
