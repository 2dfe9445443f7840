"""Conversation history by session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from api.auth import RUNS_READ, RUNS_WRITE, Caller, requires
from api.services import runs as run_service
from api.state import Db
from shared.schemas import SESSION_ID_PATTERN, MessageOut, SessionMessages

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
SessionId = Annotated[str, Path(pattern=SESSION_ID_PATTERN)]
# A page of history is bounded: a session of a million messages must not be one response.
MAX_PAGE = 10_000


@router.get(
    "/{session_id}/messages",
    response_model=SessionMessages,
    dependencies=[requires(RUNS_READ)],
)
async def get_messages(
    session_id: SessionId,
    db: Db,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    after: Annotated[
        int | None, Query(ge=0, description="the last message id already read")
    ] = None,
) -> SessionMessages:
    """The session's turns, oldest first (empty for an unknown session), ``limit`` at a time;
    ``next_after`` is set when more follow."""
    messages = await run_service.session_messages(
        db, session_id, owner=caller.visible_owner, after=after, limit=limit + 1
    )
    more = len(messages) > limit
    messages = messages[:limit]
    return SessionMessages(
        session_id=session_id,
        next_after=messages[-1].id if more else None,
        messages=[
            MessageOut(
                id=m.id, run_id=m.run_id, role=m.role, content=m.content, created_at=m.created_at
            )  # type: ignore[arg-type]
            for m in messages
        ],
    )


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[requires(RUNS_WRITE)],
)
async def forget_session(session_id: SessionId, db: Db, caller: Caller) -> Response:
    """Forget the session's history."""
    await run_service.forget_session(db, session_id, owner=caller.visible_owner)
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
