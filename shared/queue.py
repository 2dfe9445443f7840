"""The queue contract: task names and the Celery app both sides build from settings."""

from __future__ import annotations

from typing import Any

from celery import Celery

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
