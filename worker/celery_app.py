"""The worker's Celery app: a thread pool whose threads hand runs to one asyncio loop.

Nothing is built at import. ``create_worker_app(settings)`` makes the Celery app, the
process's ``WorkerRuntime`` (worker/runtime.py), registers the tasks on it
(worker/tasks.py) and connects Celery's signals to the runtime; ``flowfleet worker``
calls it and starts the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery, signals

from shared.queue import make_celery
from shared.settings import Settings
from worker.broker import transport_for
from worker.runtime import WorkerRuntime
from worker.tasks import register_tasks


@dataclass(frozen=True)
class WorkerApp:
    celery: Celery
    runtime: WorkerRuntime


def create_worker_app(settings: Settings) -> WorkerApp:
    """The worker's Celery app and the runtime its tasks and signals use."""
    app = make_celery(settings, "flowfleet-worker")
    app.conf.update(
        broker_transport=transport_for(settings.redis_url),
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
    )
    runtime = WorkerRuntime(settings, app)
    register_tasks(app, runtime)

    # weak=False: the handlers are closures; the runtime lives as long as the process.
    def on_init(**_: Any) -> None:
        runtime.on_init()

    def on_ready(**_: Any) -> None:
        runtime.on_ready()

    def on_shutting_down(**_: Any) -> None:
        runtime.on_shutting_down()

    def on_shutdown(**_: Any) -> None:
        runtime.on_shutdown()

    signals.worker_init.connect(on_init, weak=False)
    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutting_down.connect(on_shutting_down, weak=False)
    signals.worker_shutdown.connect(on_shutdown, weak=False)
    return WorkerApp(app, runtime)
