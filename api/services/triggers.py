"""Inbound triggers: a flow run by another system's HTTP call (docs/schedules.md, "Triggers").

The request body (any JSON) becomes the run's input, as LangFlow's Webhook component
receives it. The caller authenticates with an API key holding ``runs:write``, or signs the
request with the flow's trigger secret, the outgoing webhooks' scheme (shared/webhooks.py).
"""

from __future__ import annotations

import json
import time

from redis.exceptions import RedisError
from sqlalchemy import select

from api.ratelimit import rate_identity
from api.services import flows as flow_service
from api.services.submit import Submitter
from api.state import AppState
from shared.db import transaction
from shared.errors import InvalidRequest, Unauthorized
from shared.logging import error_text, get_logger
from shared.models import Flow, FlowTrigger
from shared.schedules import trigger_secret, verify_trigger

log = get_logger("api.triggers")


def input_text(body: bytes) -> str:
    """The run's input: the body as sent, if it is JSON (an empty body is ``{}``)."""
    if not body.strip():
        return "{}"
    try:
        text = body.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest(
            "the trigger body must be JSON (it becomes the run's input)", field="body"
        ) from exc
    return text


async def issue_secret(
    state: AppState, flow_id: str, *, owner: str, visible_owner: str | None
) -> tuple[str, int]:
    """A new trigger secret for a flow the caller may change; the old one stops working."""
    async with transaction(state.sessions) as session:
        flow = await flow_service.get_flow(session, flow_id, owner=visible_owner)
        flow_service.check_writable(flow, visible_owner)
        trigger = await session.get(FlowTrigger, flow_id, with_for_update=True)
        if trigger is None:
            trigger = FlowTrigger(flow_id=flow_id, owner=owner, flow_owner=flow.owner, generation=0)
            session.add(trigger)
        trigger.generation += 1
        trigger.owner, trigger.flow_owner = owner, flow.owner
        generation = trigger.generation
    log.info("trigger.secret_issued", flow_id=flow_id, generation=generation)
    return trigger_secret(state.settings, flow_id, generation), generation


async def revoke_secret(state: AppState, flow_id: str, *, visible_owner: str | None) -> None:
    """No signed trigger of this flow is accepted any more (keys still trigger it)."""
    async with transaction(state.sessions) as session:
        flow = await flow_service.get_flow(session, flow_id, owner=visible_owner)
        flow_service.check_writable(flow, visible_owner)
        trigger = await session.get(FlowTrigger, flow_id)
        if trigger is not None:
            await session.delete(trigger)


async def signed_submitter(
    state: AppState,
    flow_id: str,
    *,
    body: bytes,
    timestamp: str | None,
    signature: str,
    client_host: str | None,
) -> Submitter:
    """Who a signed trigger submits as (the secret's issuer); 401 for a bad signature."""
    if not timestamp:
        raise _refused("send X-Flowfleet-Timestamp with X-Flowfleet-Signature")
    async with state.sessions() as session:
        row = (
            await session.execute(
                select(FlowTrigger, Flow.owner)
                .join(Flow, Flow.id == FlowTrigger.flow_id)
                .where(FlowTrigger.flow_id == flow_id)
            )
        ).one_or_none()
    # A flow re-uploaded by someone else under the same id does not inherit the secret.
    if row is None or row[0].flow_owner != row[1]:
        raise _refused(f"flow {flow_id!r} has no trigger secret; its owner issues one")
    trigger: FlowTrigger = row[0]
    why = verify_trigger(
        state.settings,
        flow_id,
        trigger.generation,
        timestamp=timestamp,
        body=body,
        header=signature,
        now=time.time(),
    )
    if why is not None:
        raise _refused(why)
    await _refuse_replay(state, signature)
    return Submitter(
        owner=trigger.owner,
        rate_identity=rate_identity(state.settings, trigger.owner, client_host),
        visible_owner=None,  # the secret names this one flow; its owner was checked above
    )


async def _refuse_replay(state: AppState, signature: str) -> None:
    # A signature is accepted once: within the timestamp window a copy is refused.
    key = state.settings.redis_key("trigger-seen", signature)
    try:
        first = await state.redis.set(key, "1", nx=True, ex=2 * state.settings.trigger_max_skew_s)
    except RedisError as exc:
        log.warning("trigger.replay_check_unavailable", error=error_text(exc))
        return  # the submit that follows needs Redis and says so
    if not first:
        raise _refused("this signed request was already accepted (a replay)")


async def release_replay(state: AppState, signature: str) -> None:
    """Forget a signature whose request was not taken (a 4xx/5xx after the check), so the
    sender may send the same signed request again."""
    try:
        await state.redis.delete(state.settings.redis_key("trigger-seen", signature))
    except RedisError:
        pass  # it expires with the window


def _refused(detail: str) -> Unauthorized:
    return Unauthorized(detail)
