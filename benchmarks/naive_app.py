"""Baseline *naive*: the tutorial design. Celery prefork workers run the chain synchronously,
results go to the Redis result backend, and a FastAPI front answers a task id that clients
poll through ``AsyncResult``.

Worker: ``celery -A benchmarks.naive_app worker --pool=prefork --concurrency=<cores>``.
Front:  ``uvicorn benchmarks.naive_app:api``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from celery import Celery, signals
from celery.result import AsyncResult
from fastapi import FastAPI

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BENCH_QUEUE", "naive")

celery = Celery("naive", broker=REDIS, backend=REDIS)
celery.conf.update(task_default_queue=QUEUE, result_expires=600, worker_prefetch_multiplier=1)

_flow: Any = None
_loop: asyncio.AbstractEventLoop | None = None


@signals.worker_process_init.connect
def _init(**_: Any) -> None:
    global _flow, _loop
    from benchmarks.baseline_flow import load_flow

    _flow, _loop = load_flow(), asyncio.new_event_loop()


@celery.task(name="naive.run")
def run(text: str) -> dict[str, Any]:
    """chain.invoke: the process is blocked until the model has answered."""
    from benchmarks.baseline_flow import flow_input

    assert _loop is not None
    result = _loop.run_until_complete(_flow.ainvoke(flow_input(text), {}))
    return {"status": "succeeded", "output": result.as_json()}


api = FastAPI()


@api.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@api.post("/run")
def submit(body: dict[str, Any]) -> dict[str, str]:
    """Queue the task; answer its id."""
    return {"id": run.delay(str(body["input"])).id}


@api.get("/result/{task_id}")
def result(task_id: str) -> dict[str, Any]:
    """The task's state, and its result once ready (AsyncResult against Redis)."""
    res = AsyncResult(task_id, app=celery)
    if not res.ready():
        return {"status": "pending"}
    return res.get(timeout=1) if res.successful() else {"status": "failed"}
