"""The queue contract: task names and the Celery app both sides build from settings."""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery
from redis.asyncio import Redis

from shared.settings import Settings
from shared.telemetry import propagation_headers

RUN_TASK = "flowfleet.run"
WEBHOOK_TASK = "flowfleet.webhook"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Broker settings shared by the API (producer) and the workers (consumers)."""
    transport = {
        # A message a dead worker took but never claimed comes back after this. Redelivery
        # of a run still running is harmless (its lease makes the copy a no-op), so this
        # need not exceed the longest run.
        "visibility_timeout": settings.visibility_timeout_s,
        # Scan for such messages every 10 s rather than kombu's default of ~100 s.
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
        "socket_timeout": 5,
        "socket_connect_timeout": 3,
        "retry_on_timeout": False,
    }
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.queue_name,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,  # PostgreSQL holds results, not the result backend
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A failed publish must answer the client quickly, not retry for minutes.
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
        },
    }


def make_celery(settings: Settings, name: str = "flowfleet") -> Celery:
    app = Celery(name)
    app.conf.update(celery_config(settings))
    return app


def enqueue_run(app: Celery, run_id: str, *, headers: dict[str, Any] | None = None) -> None:
    """Send only the run id; the worker reads everything else from the database.

    The headers carry the submitting request's id and trace context, never run data.
    """
    carried = {**propagation_headers(), "run_id": run_id, **(headers or {})}
    app.send_task(RUN_TASK, args=[run_id], headers=carried)


_ORIGIN = f"{os.getpid()}@{socket.gethostname()}"


def run_message(settings: Settings, run_id: str, headers: Mapping[str, str] | None = None) -> bytes:
    """The ``flowfleet.run`` message exactly as Celery's Redis transport stores it.

    Celery message protocol 2 inside kombu's virtual-transport envelope; a test
    checks it against what ``send_task`` writes.
    """
    task_id = str(uuid.uuid4())
    body = json.dumps(
        [[run_id], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    )
    task_headers: dict[str, Any] = {
        "lang": "py",
        "task": RUN_TASK,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr([run_id]),
        "kwargsrepr": "{}",
        "origin": _ORIGIN,
        "ignore_result": None,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
        **(headers or {}),
        "run_id": run_id,
    }
    envelope = {
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": task_headers,
        "properties": {
            "correlation_id": task_id,
            "reply_to": str(uuid.uuid4()),
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": settings.queue_name},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(envelope).encode()


async def publish_runs(
    redis: Redis, settings: Settings, runs: Sequence[tuple[str, Mapping[str, str]]]
) -> None:
    """Enqueue runs from async code with one LPUSH on the API's own Redis pool; each
    ``(run id, headers)`` carries the propagation headers of the request that submitted it.

    ``send_task`` is synchronous: from the API it needs a thread hop and a
    connection from kombu's small producer pool per submit, the submit path's
    bottleneck (docs/architecture.md, "Overrides").
    """
    messages = (run_message(settings, run_id, headers) for run_id, headers in runs)
    await redis.lpush(settings.queue_name, *messages)
