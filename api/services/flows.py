"""The flow registry in the database: sync from the flows directory, upload, read, delete.

Who may reach a flow is decided here, for every caller of these functions. ``owner`` is
the caller's visible owner (``Principal.visible_owner``): a key's id, or None for an
admin. A key reaches its own flows and the shared ``SYSTEM`` ones; it changes only its
own. Another owner's flow is answered exactly as a missing one (404), so a key cannot
tell which private flows exist, except that uploading to a taken id is a 409.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flows.base import FlowDefinition
from flows.definitions import describe
from shared.errors import (
    FlowIdTaken,
    FlowNotFound,
    InsufficientScope,
    InvalidRequest,
    PayloadTooLarge,
)
from shared.models import SYSTEM, Flow, FlowVersion
from shared.settings import Settings


def _meta(defn: FlowDefinition) -> dict[str, object]:
    data = dataclasses.asdict(defn)
    data.pop("source")
    return data


def visible(flow: Flow | FlowRef, owner: str | None) -> bool:
    """Whether a caller with this visible owner may read and run the flow."""
    return owner is None or flow.owner in (owner, SYSTEM)


def check_writable(flow: Flow, owner: str | None) -> None:
    """Refuse a change to a flow the caller does not own (admins own every flow)."""
    if owner is None or flow.owner == owner:
        return
    if flow.owner == SYSTEM:
        raise InsufficientScope(
            f"{flow.id!r} is a shared flow: replacing or deleting it needs the 'admin' scope;"
            " upload your own under another id",
            required_scope="admin",
        )
    raise FlowIdTaken(f"the flow id {flow.id!r} is taken by another owner; choose another id")


# Uploads are parsed and validated here, never on the event loop: two threads of their own,
# so a burst of uploads neither blocks /healthz nor takes the default executor's threads.
_VALIDATORS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="flow-validate")


async def describe_upload(settings: Settings, flow_id: str, text: str) -> FlowDefinition:
    """Parse and validate an uploaded export off the event loop, within the time budget.

    Raises FlowValidationError (422), or PayloadTooLarge (413) when the export is over a
    graph limit or validating it takes longer than ``flow_validation_timeout_s``. Past the
    budget the thread is abandoned, not stopped; the graph limits bound what it has left.
    """
    from flows.langflow.document import FlowTooLarge

    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(_VALIDATORS, describe, flow_id, "langflow", text)
    try:
        return await asyncio.wait_for(work, settings.flow_validation_timeout_s)
    except FlowTooLarge as exc:
        raise PayloadTooLarge(str(exc), problems=[p.as_json() for p in exc.problems]) from exc
    except TimeoutError as exc:
        raise PayloadTooLarge(
            f"validating the flow took over {settings.flow_validation_timeout_s:g} s; "
            "split it into smaller flows"
        ) from exc


async def save_definition(
    session: AsyncSession, defn: FlowDefinition, *, origin: str, owner: str | None
) -> Flow:
    """Store a version (once per content hash) and make it the flow's current one.

    ``owner`` None (an admin, the flows directory) makes a new flow a shared one and may
    replace any flow (keeping its owner); a key may replace only its own.
    """
    flow = await session.get(Flow, defn.id)
    if flow is not None:
        check_writable(flow, owner)
    exists = await session.get(FlowVersion, (defn.id, defn.version))
    if exists is None:
        try:
            async with session.begin_nested():
                session.add(
                    FlowVersion(
                        flow_id=defn.id,
                        version=defn.version,
                        kind=defn.kind,
                        source=defn.source,
                        meta=_meta(defn),
                    )
                )
        except IntegrityError:
            pass  # another replica stored the same version at the same moment
    fields = {
        "kind": defn.kind,
        "name": defn.name,
        "description": defn.description,
        "current_version": defn.version,
        "origin": origin,
        "updated_at": datetime.now(UTC),
    }
    if flow is None:
        flow = Flow(id=defn.id, owner=owner or SYSTEM, options={}, **fields)
        try:
            async with session.begin_nested():
                session.add(flow)
        except IntegrityError as exc:  # another owner created this id at the same moment
            raise FlowIdTaken(
                f"the flow id {defn.id!r} was just taken; choose another id or retry"
            ) from exc
    else:
        for name, value in fields.items():
            setattr(flow, name, value)
    await session.flush()
    _refs.pop(defn.id, None)
    return flow


def _not_found(flow_id: str) -> FlowNotFound:
    return FlowNotFound(f"no flow with id {flow_id!r}; GET /v1/flows lists them")


async def get_flow(session: AsyncSession, flow_id: str, *, owner: str | None) -> Flow:
    """The flow, if this caller may reach it; FlowNotFound otherwise (even if it exists)."""
    flow = await session.get(Flow, flow_id)
    if flow is None or not visible(flow, owner):
        raise _not_found(flow_id)
    return flow


@dataclass(frozen=True)
class FlowRef:
    """What submitting a run needs of a flow: which version new runs get."""

    id: str
    kind: str
    current_version: str
    owner: str = SYSTEM


_refs: dict[str, tuple[float, FlowRef]] = {}
FLOW_REF_TTL_S = 1.0


async def flow_for_submit(session: AsyncSession, flow_id: str, *, owner: str | None) -> FlowRef:
    """The flow's current version, cached for a second per process; 404 if not the caller's.

    Submitting is the hot path; a flow changes rarely. An upload on this replica is
    seen at once, one on another replica within ``FLOW_REF_TTL_S``; either way a run
    records the exact version it got and that version is never deleted.
    """
    now = time.monotonic()
    cached = _refs.get(flow_id)
    if cached is not None and now - cached[0] < FLOW_REF_TTL_S:
        ref = cached[1]
    else:
        flow = await session.get(Flow, flow_id)
        if flow is None:
            raise _not_found(flow_id)
        ref = FlowRef(flow.id, flow.kind, flow.current_version, flow.owner)
        _refs[flow_id] = (now, ref)
    if not visible(ref, owner):
        raise _not_found(flow_id)  # another tenant's flow looks exactly like a missing one
    return ref


async def refresh_flow_refs(session: AsyncSession) -> None:
    """Re-read every cached flow's current version in one query (off the request path).

    An entry dropped (an upload here) or re-read while the query ran is left alone: the
    answer may predate that upload.
    """
    if not _refs:
        return
    started = time.monotonic()
    rows = await session.execute(
        select(Flow.id, Flow.kind, Flow.current_version, Flow.owner).where(Flow.id.in_(list(_refs)))
    )
    current = {row.id: FlowRef(row.id, row.kind, row.current_version, row.owner) for row in rows}
    now = time.monotonic()
    for flow_id, (stamped, _) in list(_refs.items()):
        if stamped > started:
            continue
        if flow_id in current:
            _refs[flow_id] = (now, current[flow_id])
        else:  # deleted
            _refs.pop(flow_id, None)


async def get_version(session: AsyncSession, flow_id: str, version: str) -> FlowVersion:
    found = await session.get(FlowVersion, (flow_id, version))
    if found is None:
        raise FlowNotFound(f"flow {flow_id!r} has no version {version!r}")
    return found


async def list_flows(session: AsyncSession, *, owner: str | None) -> list[Flow]:
    """The flows this caller may reach: its own and the shared ones (an admin: all)."""
    query = select(Flow)
    if owner is not None:
        query = query.where(Flow.owner.in_([owner, SYSTEM]))
    return list((await session.scalars(query.order_by(Flow.id))).all())


async def delete_flow(session: AsyncSession, flow_id: str, *, owner: str | None) -> None:
    """Remove a flow from the registry; its versions stay for the runs that used them."""
    flow = await get_flow(session, flow_id, owner=owner)
    check_writable(flow, owner)
    _refs.pop(flow_id, None)
    await session.delete(flow)
    await session.flush()


_documents: OrderedDict[tuple[str, str], Any] = OrderedDict()
_DOCUMENTS_KEPT = 32


async def check_tweaks(session: AsyncSession, flow: Flow | FlowRef, tweaks: dict[str, Any]) -> None:
    """Reject tweaks naming an unknown component or field (422), before anything is queued."""
    if not tweaks:
        return
    if flow.kind != "langflow":
        raise InvalidRequest(
            "tweaks apply to LangFlow flows only; this is a Python flow", field="tweaks"
        )
    from flows.langflow.document import parse_document
    from flows.langflow.validation import validate_tweaks

    key = (flow.id, flow.current_version)
    doc = _documents.get(key)
    if doc is None:
        # Versions are immutable, so a parsed document is cached for good (bounded).
        version = await get_version(session, flow.id, flow.current_version)
        doc = parse_document(version.source)
        _documents[key] = doc
        if len(_documents) > _DOCUMENTS_KEPT:
            _documents.popitem(last=False)
    problems = validate_tweaks(doc, tweaks)
    if problems:
        raise InvalidRequest(
            "; ".join(p.message for p in problems),
            field="tweaks",
            problems=[p.as_json() for p in problems],
        )
