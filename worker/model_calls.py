"""Each model call of a run as a ``run_steps`` row (kind ``model_call``): what the model was sent.

LangChain calls ``on_chat_model_start`` with the messages of every chat-model call a flow
makes with the run's ``config`` (prompt chains and agents alike), and ``on_llm_end`` /
``on_llm_error`` when it is over. The start is kept in memory and the call is written once,
at its end, as one row: one insert per model call, nothing per streamed token. The console
reads the rows through ``GET /v1/runs/{id}/timeline``; ``/steps`` keeps to tool steps.

What a row holds: the model, the routed backend's *name* (never its address, key or
headers), the messages (role and text, capped: the newest ones and a leading system prompt
are kept first, see ``capture``), the answer (capped), token usage and latency. Off with
``FLOWFLEET_RECORD_MODEL_CALLS=false``. Recording never fails a run: its errors are logged.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, ChatMessage
from langchain_core.outputs import LLMResult

from shared.logging import get_logger
from shared.models import utcnow
from worker.cancel import RunCancelled
from worker.context import WorkerContext
from worker.metrics import call_labels, error_kind, token_counts
from worker.steps import record_step

log = get_logger("worker.model_calls")

MESSAGE_MAX_CHARS = 4_000  # of one message's text kept in a row (an agent's instructions fit)
MESSAGES_MAX_CHARS = 8_000  # of all of a call's messages together
RESPONSE_MAX_CHARS = 2_000  # of the model's answer
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def _content_text(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict):  # an image or file: its kind, never its bytes
            parts.append(f"[{block.get('type', 'block')}]")
    return "\n".join(parts)


def message_text(message: BaseMessage) -> str:
    """The text a message carried, an assistant's tool calls as lines of their own."""
    text = _content_text(message.content)
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            line = f"[tool call] {call['name']} {json.dumps(call['args'], default=str)}"
            text = f"{text}\n{line}" if text else line
    return text


def _role(message: BaseMessage) -> str:
    if isinstance(message, ChatMessage):
        return message.role
    return _ROLES.get(message.type, message.type)


def capture(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """The messages as ``{messages, messages_total, truncated[, note]}``, within the caps.

    Past the total, the newest messages and a leading system prompt are what a reader needs
    (what was asked now, under which instructions): they are kept first, older turns are
    left out, and each kept message says its ``index`` so the gap shows.
    """
    texts = [(_role(m), message_text(m)) for m in messages]
    first = 1 if texts and texts[0][0] == "system" else 0
    order = [*range(first), *range(len(texts) - 1, first - 1, -1)]
    kept: dict[int, str] = {}
    budget = MESSAGES_MAX_CHARS
    for index in order:
        if budget <= 0:
            break
        kept[index] = texts[index][1][: min(MESSAGE_MAX_CHARS, budget)]
        budget -= len(kept[index])
    rows = []
    shortened = 0
    for index in sorted(kept):
        role, full = texts[index]
        cut = len(kept[index]) < len(full)
        shortened += cut
        rows.append({"index": index, "role": role, "content": kept[index], "truncated": cut})
    omitted = len(texts) - len(kept)
    captured: dict[str, Any] = {
        "messages": rows,
        "messages_total": len(texts),
        "truncated": bool(omitted or shortened),
    }
    if captured["truncated"]:
        captured["note"] = (
            f"messages cut to {MESSAGE_MAX_CHARS} characters each and {MESSAGES_MAX_CHARS} "
            f"in all: {omitted} of {len(texts)} left out, {shortened} shortened"
        )
    return captured


def _response_text(response: LLMResult) -> str:
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            return message_text(message) if isinstance(message, BaseMessage) else generation.text
    return ""


class ModelCalls(AsyncCallbackHandler):
    """Records each chat-model call of one run as a ``model_call`` step, when it ends."""

    run_inline = True  # awaited in turn, no task per event (see worker/streaming.py)

    def __init__(self, ctx: WorkerContext, run_id: str, attempt: int) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.attempt = attempt
        # LangChain run id: (start on the perf clock, start time, what the row will hold)
        self._calls: dict[UUID, tuple[float, datetime, dict[str, Any]]] = {}

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            backend, model = call_labels(metadata, kwargs.get("invocation_params"))
            sent: Iterable[BaseMessage] = (m for prompt in messages for m in prompt)
            data = {
                "id": str(run_id),
                "model": model,
                "backend": backend,
                **capture(list(sent)),
                "ts": time.time(),
            }
            self._calls[run_id] = (time.perf_counter(), utcnow(), data)
        except Exception as exc:  # a message we cannot read is no reason to stop the run
            log.warning("run.model_call_unrecorded", run_id=self.run_id, error=type(exc).__name__)

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._calls.pop(run_id, None)
        if call is None:
            return
        started, started_at, data = call
        try:
            text = _response_text(response)
            tokens_in, tokens_out = token_counts(response)
            data.update(
                status="success",
                response=text[:RESPONSE_MAX_CHARS],
                response_truncated=len(text) > RESPONSE_MAX_CHARS,
                tokens={"input": tokens_in, "output": tokens_out},
                latency_ms=round((time.perf_counter() - started) * 1000, 1),
            )
        except Exception as exc:
            log.warning("run.model_call_unrecorded", run_id=self.run_id, error=type(exc).__name__)
            return
        await self._record(started_at, data)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._calls.pop(run_id, None)
        if call is None or isinstance(error, asyncio.CancelledError | RunCancelled):
            return  # a cancelled run (or a worker shutting down) writes nothing more
        started, started_at, data = call
        # The kind and the exception's type only: a backend's error text may quote a key.
        data.update(
            status="error",
            error=error_kind(error),
            error_type=type(error).__name__,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        await self._record(started_at, data)

    async def _record(self, started_at: datetime, data: dict[str, Any]) -> None:
        # created_at is the call's start, so the timeline puts it before the tools it asked for.
        await record_step(
            self.ctx,
            {
                "run_id": self.run_id,
                "attempt": self.attempt,
                "kind": "model_call",
                "tool_call_id": data["id"][:128],
                "name": data["model"][:128],
                "data": data,
                "created_at": started_at,
            },
        )
