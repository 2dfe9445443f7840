"""What a run did: its agents' tool calls and results (docs/agents.md), and its timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.auth import RUNS_READ, Caller, requires
from api.services import steps as step_service
from api.services import timeline as timeline_service
from api.state import Db
from shared.run_status import RunStatus
from shared.schemas import RunSteps, StepOut

router = APIRouter(prefix="/v1", tags=["runs"], dependencies=[requires(RUNS_READ)])


@router.get(
    "/runs/{run_id}/steps",
    response_model=RunSteps,
    responses={404: {"description": "run_not_found"}},
)
async def get_steps(run_id: str, db: Db, caller: Caller) -> RunSteps:
    """The run's tool calls and results, in order, every attempt's (tools run at least once)."""
    rows = await step_service.list_steps(db, run_id, owner=caller.visible_owner)
    return RunSteps(
        run_id=run_id,
        items=[
            StepOut(
                event=r.kind,
                attempt=r.attempt,
                id=r.tool_call_id,
                name=r.name,
                args=r.data.get("args") if r.kind == "tool_call" else None,
                status=r.data.get("status") if r.kind == "tool_result" else None,
                result=r.data.get("result") if r.kind == "tool_result" else None,
                created_at=r.created_at,
            )
            for r in rows
        ],
    )


class TimelineItem(BaseModel):
    at: datetime
    # queued, started, attempt, model_call, tool_call, tool_result, token_summary, and the
    # end: finished (succeeded), failed or cancelled.
    kind: str
    title: str
    detail: dict[str, Any]
    attempt: int | None = None  # for a step: the attempt that recorded it


class RunTimeline(BaseModel):
    run_id: str
    status: RunStatus
    attempts: int
    items: list[TimelineItem]  # in time order
    truncated: bool  # more steps than a timeline holds (the first ones are shown)


@router.get(
    "/runs/{run_id}/timeline",
    response_model=RunTimeline,
    responses={404: {"description": "run_not_found"}},
)
async def get_timeline(run_id: str, db: Db, caller: Caller) -> RunTimeline:
    """The run from queued to its end: attempts, model calls, tool calls, tokens, result."""
    found = await timeline_service.run_timeline(db, run_id, owner=caller.visible_owner)
    return RunTimeline(
        run_id=found.run.id,
        status=found.run.status,
        attempts=found.run.attempts,
        items=[
            TimelineItem(at=i.at, kind=i.kind, title=i.title, detail=i.detail, attempt=i.attempt)
            for i in found.items
        ],
        truncated=found.truncated,
    )
