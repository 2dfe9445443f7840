"""Inbound triggers: ``POST /v1/flows/{id}/trigger`` and the flow's trigger secret."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import BaseModel

from api.auth import FLOWS_WRITE, RUNS_WRITE, Caller, get_principal, requires, spend_request_token
from api.services import submit as submit_service
from api.services import triggers as trigger_service
from api.state import State
from flows.definitions import FLOW_ID_PATTERN
from shared.schemas import SESSION_ID_PATTERN, RunCreate, RunOut, run_out
from shared.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER

router = APIRouter(prefix="/v1/flows", tags=["triggers"])
FlowId = Annotated[str, Path(pattern=FLOW_ID_PATTERN)]


class TriggerSecret(BaseModel):
    flow_id: str
    secret: str
    generation: int
    trigger_url: str


@router.post(
    "/{flow_id}/trigger",
    dependencies=[requires(RUNS_WRITE, or_signed=True)],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    responses={
        401: {"description": "unauthorized: no key, or a bad or replayed signature"},
        404: {"description": "flow_not_found"},
        422: {"description": "the body is not JSON"},
        429: {"description": "rate_limited, key_queue_full"},
        503: {"description": "backend_unavailable, queue_full"},
    },
)
async def trigger(
    flow_id: FlowId,
    request: Request,
    response: Response,
    state: State,
    session_id: Annotated[str | None, Query(pattern=SESSION_ID_PATTERN)] = None,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=256)
    ] = None,
) -> RunOut:
    """Run the flow with the request body (any JSON) as its input; answers 202 at once."""
    body = await request.body()
    client = request.client.host if request.client else None
    if signature is not None:
        who = await trigger_service.signed_submitter(
            state, flow_id, body=body, timestamp=timestamp, signature=signature, client_host=client
        )
    else:
        who = submit_service.submitter(state.settings, await get_principal(request), client)
    try:
        if signature is not None:
            await spend_request_token(request, response, who.owner)
        run_request = RunCreate(input=trigger_service.input_text(body), session_id=session_id)
        accepted = await submit_service.submit(
            state, who, flow_id=flow_id, body=run_request, idempotency_key=idempotency_key
        )
    except Exception:
        if signature is not None:  # not taken: the same signed request may come again
            await trigger_service.release_replay(state, signature)
        raise
    if not accepted.created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/runs/{accepted.run.id}"
    return run_out(accepted.run)


@router.post(
    "/{flow_id}/trigger-secret",
    dependencies=[requires(FLOWS_WRITE)],
    status_code=status.HTTP_201_CREATED,
    response_model=TriggerSecret,
    responses={404: {"description": "flow_not_found"}},
)
async def issue_trigger_secret(flow_id: FlowId, state: State, caller: Caller) -> TriggerSecret:
    """A new trigger secret for the flow (shown once); the previous one stops working."""
    secret, generation = await trigger_service.issue_secret(
        state, flow_id, owner=caller.owner, visible_owner=caller.visible_owner
    )
    return TriggerSecret(
        flow_id=flow_id,
        secret=secret,
        generation=generation,
        trigger_url=f"/v1/flows/{flow_id}/trigger",
    )


@router.delete(
    "/{flow_id}/trigger-secret",
    dependencies=[requires(FLOWS_WRITE)],
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "flow_not_found"}},
)
async def revoke_trigger_secret(flow_id: FlowId, state: State, caller: Caller) -> Response:
    """Signed triggers of the flow are refused from now on (keys still trigger it)."""
    await trigger_service.revoke_secret(state, flow_id, visible_owner=caller.visible_owner)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
