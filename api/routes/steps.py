"""What a run's agents did: each tool call and result (docs/agents.md)."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import RUNS_READ, Caller, requires
from api.services import steps as step_service
from api.state import Db
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
