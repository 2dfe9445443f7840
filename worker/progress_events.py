"""An ingest's progress as run events (``progress``): chunks split, embedded, stored.

RAG components report through the run's callbacks (``flows.langflow.rag.report_progress``);
this handler is one of them, so each report becomes an event in the run's stream (the same
stream as tokens and status, resumable by Last-Event-ID). Best effort, like every event.
"""

from __future__ import annotations

import json
import time
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler

from shared import events
from shared.events import EventType
from shared.logging import get_logger
from worker.context import WorkerContext

log = get_logger("worker.progress_events")


class ProgressEvents(AsyncCallbackHandler):
    """Publishes a run's ingest progress reports as ``progress`` events."""

    def __init__(self, ctx: WorkerContext, run_id: str) -> None:
        self.ctx = ctx
        self.run_id = run_id

    async def on_flowfleet_progress(self, data: dict[str, Any]) -> None:
        settings = self.ctx.settings
        body = {**data, "ts": time.time()}
        try:
            await self.ctx.redis.xadd(
                events.stream_key(settings, self.run_id),
                {"event": EventType.PROGRESS.value, "data": json.dumps(body, default=str)},
                maxlen=settings.events_maxlen,
                approximate=True,
            )
        except Exception as exc:  # losing Redis loses live events, never results
            log.warning("run.event_lost", run_id=self.run_id, event_type="progress", error=str(exc))
