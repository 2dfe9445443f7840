"""An agent's tool calls and results as run events and rows: what the agent did.

LangChain calls ``on_tool_start`` / ``on_tool_end`` for every tool an agent runs with the
run's ``config`` (flows/langflow/agent.py). Each becomes a ``tool_call`` / ``tool_result``
event in the run's stream (the same stream as tokens, so SSE readers see them in order and
resume by Last-Event-ID) and a ``run_steps`` row (``GET /v1/runs/{id}/steps``), written as
it happens. Publishing a ``tool_call`` reads the cancel flag in the same Redis round trip:
a cancelled run stops before its next tool runs.
"""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import ToolMessage

from shared import events
from shared.logging import get_logger
from shared.models import utcnow
from worker.cancel import RunCancelled
from worker.context import WorkerContext
from worker.steps import record_step

log = get_logger("worker.tool_events")
RESULT_MAX_CHARS = 4000  # of a tool result kept in its event and row (the model got it whole)


def _result_text(output: Any) -> tuple[str, str]:
    if isinstance(output, ToolMessage):
        content = output.content
        text = content if isinstance(content, str) else json.dumps(content, default=str)
        return text, output.status
    return (output if isinstance(output, str) else json.dumps(output, default=str)), "success"


class ToolEvents(AsyncCallbackHandler):
    """Publishes and records each tool call and result of one run."""

    raise_error = True  # RunCancelled from a tool_call must stop the agent
    run_inline = True

    def __init__(self, ctx: WorkerContext, run_id: str, attempt: int) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.attempt = attempt
        self._calls: dict[UUID, tuple[str, str]] = {}  # LangChain run id: (call id, name)

    async def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        inputs: dict[str, Any] | None = None,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        name = str(serialized.get("name") or kwargs.get("name") or "tool")
        call_id = tool_call_id or str(run_id)
        self._calls[run_id] = (call_id, name)
        args = inputs if isinstance(inputs, dict) else {"input": input_str}
        data = {"id": call_id, "name": name, "args": args, "ts": time.time()}
        if await self._emit("tool_call", data, check_cancel=True):
            raise RunCancelled(self.run_id)

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        call_id, name = self._calls.pop(run_id, (str(run_id), str(kwargs.get("name") or "tool")))
        text, status = _result_text(output)
        data = {
            "id": call_id,
            "name": name,
            "status": status,
            "result": text[:RESULT_MAX_CHARS],
            "truncated": len(text) > RESULT_MAX_CHARS,
            "ts": time.time(),
        }
        await self._emit("tool_result", data)

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call_id, name = self._calls.pop(run_id, (str(run_id), "tool"))
        if isinstance(error, RunCancelled):
            return
        data = {
            "id": call_id,
            "name": name,
            "status": "error",
            "result": f"{type(error).__name__}: {error}"[:RESULT_MAX_CHARS],
            "truncated": False,
            "ts": time.time(),
        }
        await self._emit("tool_result", data)

    async def _emit(self, event: str, data: dict[str, Any], *, check_cancel: bool = False) -> bool:
        """Record the step, then publish it; returns whether the run's cancel flag is set."""
        row = {
            "run_id": self.run_id,
            "attempt": self.attempt,
            "kind": event,
            "tool_call_id": data["id"][:128],
            "name": data["name"][:128],
            "data": data,
            "created_at": utcnow(),
        }
        await record_step(self.ctx, row)
        settings = self.ctx.settings
        try:
            async with self.ctx.events.pipeline(transaction=False) as pipe:
                pipe.xadd(
                    events.stream_key(settings, self.run_id),
                    {"event": event, "data": json.dumps(data, default=str)},
                    maxlen=settings.events_maxlen,
                    approximate=True,
                )
                if check_cancel:
                    pipe.exists(events.cancel_key(settings, self.run_id))
                replies = await pipe.execute()
        except Exception as exc:
            # Events are best effort: losing Redis loses live events, never results.
            log.warning(
                "run.event_lost", run_id=self.run_id, event_type=event, error=type(exc).__name__
            )
            return False
        return bool(check_cancel and replies[-1])
