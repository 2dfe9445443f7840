"""The flow registry in the database: sync from the flows directory, upload, read, delete."""

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
from shared.errors import FlowNotFound, InvalidRequest, PayloadTooLarge
from shared.models import Flow, FlowVersion
from shared.settings import Settings


def _meta(defn: FlowDefinition) -> dict[str, object]:
    data = dataclasses.asdict(defn)
    data.pop("source")
    return data


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


async def save_definition(session: AsyncSession, defn: FlowDefinition, *, origin: str) -> Flow:
    """Store a version (once per content hash) and make it the flow's current one."""
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
    flow = await session.get(Flow, defn.id)
    if flow is None:
        flow = Flow(id=defn.id, options={})
        session.add(flow)
    flow.kind = defn.kind
    flow.name = defn.name
    flow.description = defn.description
    flow.current_version = defn.version
    flow.origin = origin
    flow.updated_at = datetime.now(UTC)
    await session.flush()
    _refs.pop(defn.id, None)
    return flow


async def get_flow(session: AsyncSession, flow_id: str) -> Flow:
    flow = await session.get(Flow, flow_id)
    if flow is None:
        raise FlowNotFound(f"no flow with id {flow_id!r}; GET /v1/flows lists them")
    return flow


@dataclass(frozen=True)
class FlowRef:
    """What submitting a run needs of a flow: which version new runs get."""

    id: str
    kind: str
    current_version: str


_refs: dict[str, tuple[float, FlowRef]] = {}
FLOW_REF_TTL_S = 1.0


async def flow_for_submit(session: AsyncSession, flow_id: str) -> FlowRef:
    """The flow's current version, cached for a second per process.

    Submitting is the hot path; a flow changes rarely. An upload on this replica is
    seen at once, one on another replica within ``FLOW_REF_TTL_S``; either way a run
    records the exact version it got and that version is never deleted.
    """
    now = time.monotonic()
    cached = _refs.get(flow_id)
    if cached is not None and now - cached[0] < FLOW_REF_TTL_S:
        return cached[1]
    flow = await get_flow(session, flow_id)
    ref = FlowRef(flow.id, flow.kind, flow.current_version)
    _refs[flow_id] = (now, ref)
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
        select(Flow.id, Flow.kind, Flow.current_version).where(Flow.id.in_(list(_refs)))
    )
    current = {flow_id: FlowRef(flow_id, kind, version) for flow_id, kind, version in rows.all()}
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


async def list_flows(session: AsyncSession) -> list[Flow]:
    return list((await session.scalars(select(Flow).order_by(Flow.id))).all())


async def delete_flow(session: AsyncSession, flow_id: str) -> None:
    """Remove a flow from the registry; its versions stay for the runs that used them."""
    flow = await get_flow(session, flow_id)
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
