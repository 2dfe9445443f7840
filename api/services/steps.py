"""An agent's recorded steps (tool calls and results) of one run."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.services.runs import get_run
from shared.models import RunStep

TOOL_KINDS = ("tool_call", "tool_result")  # model calls are rows too: the timeline shows them


async def list_steps(session: AsyncSession, run_id: str, *, owner: str | None) -> list[RunStep]:
    """The run's steps in the order they happened; RunNotFound for another owner's run."""
    await get_run(session, run_id, owner=owner)
    rows = await session.scalars(
        select(RunStep)
        .where(RunStep.run_id == run_id, RunStep.kind.in_(TOOL_KINDS))
        .order_by(RunStep.id)
    )
    return list(rows)
