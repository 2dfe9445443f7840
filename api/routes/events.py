"""Follow a run: Server-Sent Events, and a long-poll that answers when it finishes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.auth import RUNS_READ, Caller, requires
from api.services import events as event_service
from api.services.events import SSE_HEADERS, wait_for
from api.state import State
from shared.schemas import RunOut, run_out

router = APIRouter(prefix="/v1", tags=["runs"], dependencies=[requires(RUNS_READ)])


@router.get(
    "/runs/{run_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "the run's events"},
        404: {"description": "run_not_found"},
    },
)
async def run_events(
    run_id: str,
    state: State,
    caller: Caller,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """The run's events as SSE (status, token, tool_call, tool_result, output, error, done);
    resumable by Last-Event-ID."""
    after = event_service.parse_event_id(last_event_id)
    run = await event_service.load_run(state, run_id, caller.visible_owner)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async for event_id, event, data in event_service.follow(
            state, run, after, owner=caller.visible_owner
        ):
            yield ServerSentEvent(data=json.dumps(data), event=event, id=event_id)

    return EventSourceResponse(stream(), headers=SSE_HEADERS, ping=state.settings.sse_ping_s)


@router.get(
    "/runs/{run_id}/wait",
    response_model=RunOut,
    responses={404: {"description": "run_not_found"}},
)
async def wait_run(
    run_id: str,
    state: State,
    caller: Caller,
    timeout: Annotated[float, Query(ge=0, description="seconds; capped by wait_max_s")] = 30.0,
) -> RunOut:
    """Answer when the run finishes, or with its current state after ``timeout`` seconds."""
    run, _ = await wait_for(state, run_id, timeout, caller.visible_owner)
    return run_out(run)
