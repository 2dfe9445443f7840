"""A run's timeline for the console: its row's moments and its recorded steps, in order.

Built from what is already stored: the run row (created, started, finished, attempts,
error, usage) and its ``run_steps`` rows (tool calls and results, model calls where the
worker recorded them). One query for the steps, capped, so a run with thousands of them
answers in one round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.services.runs import get_run
from shared.models import Run, RunStep
from shared.run_status import RunStatus

MAX_STEPS = 10_000  # a run past this shows its first steps and says it was cut
INPUT_PREVIEW_CHARS = 2_000


@dataclass
class Item:
    at: datetime
    kind: str
    title: str
    detail: dict[str, Any] = field(default_factory=dict)
    attempt: int | None = None


@dataclass
class Timeline:
    run: Run
    items: list[Item]
    truncated: bool


def _step_item(step: RunStep) -> Item:
    data = step.data or {}
    if step.kind == "tool_call":
        title = f"Tool call: {step.name}"
    elif step.kind == "tool_result":
        title = f"Tool result: {step.name} ({data.get('status', 'success')})"
    elif step.kind == "model_call":
        title = f"Model call: {step.name}"
    else:
        title = step.kind.replace("_", " ").capitalize()
    return Item(step.created_at, step.kind, title, dict(data), step.attempt)


def _run_items(run: Run) -> tuple[list[Item], list[Item]]:
    """(items at the start of the run, items at its end)."""
    text = run.input or ""
    head = [
        Item(
            run.created_at,
            "queued",
            "Queued",
            {
                "flow_id": run.flow_id,
                "flow_version": run.flow_version,
                "session_id": run.session_id,
                "input": text[:INPUT_PREVIEW_CHARS],
                "input_truncated": len(text) > INPUT_PREVIEW_CHARS,
                "cached": run.cached,
            },
        )
    ]
    if run.started_at is not None:
        head.append(Item(run.started_at, "started", "Started", {"attempts": run.attempts}))
    tail: list[Item] = []
    if run.finished_at is None:
        return head, tail
    if run.usage:
        tokens = run.usage.get("total_tokens")
        tail.append(Item(run.finished_at, "token_summary", f"Tokens: {tokens}", dict(run.usage)))
    end: dict[str, Any] = {"worker": run.worker, "attempts": run.attempts}
    if run.status == RunStatus.SUCCEEDED:
        tail.append(Item(run.finished_at, "finished", "Succeeded", {**end, "output": run.output}))
    elif run.status == RunStatus.FAILED:
        error = {"code": run.error_code, "message": run.error_message or ""}
        tail.append(Item(run.finished_at, "failed", f"Failed: {run.error_code}", {**end, **error}))
    else:
        tail.append(Item(run.finished_at, str(run.status), str(run.status).capitalize(), end))
    return head, tail


async def run_timeline(session: AsyncSession, run_id: str, *, owner: str | None) -> Timeline:
    """The run's moments in time order; RunNotFound for another owner's run."""
    run = await get_run(session, run_id, owner=owner)
    rows = (
        await session.scalars(
            select(RunStep)
            .where(RunStep.run_id == run_id)
            .order_by(RunStep.id)
            .limit(MAX_STEPS + 1)
        )
    ).all()
    truncated = len(rows) > MAX_STEPS
    head, tail = _run_items(run)
    steps: list[Item] = []
    attempt: int | None = None
    for step in rows[:MAX_STEPS]:
        if attempt is not None and step.attempt != attempt:
            # A later attempt after its worker died: what ran before stays on the record.
            steps.append(
                Item(step.created_at, "attempt", f"Attempt {step.attempt}", {}, step.attempt)
            )
        attempt = step.attempt
        steps.append(_step_item(step))
    # Stable sort: equal times keep queued → started → steps (by id) → summary → end.
    items = sorted([*head, *steps, *tail], key=lambda item: item.at)
    return Timeline(run, items, truncated)
