"""What the console shows of a flow beside its description: the graph and the versions."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.services.flows import get_flow
from flows.langflow.graph_view import graph_view
from shared.logging import error_text, get_logger
from shared.models import Flow, FlowVersion

log = get_logger("api.flow_views")
# Versions never change, so a drawn graph is kept per (flow, version); bounded.
_graphs: OrderedDict[tuple[str, str], dict[str, Any] | None] = OrderedDict()
_GRAPHS_KEPT = 64
# An upload stores its version a moment before the flow row it creates (same request).
_SAME_UPLOAD = timedelta(seconds=5)


async def graph(version: FlowVersion) -> dict[str, Any] | None:
    """The version's graph for drawing (None for a Python flow or an unreadable export)."""
    if version.kind != "langflow":
        return None
    key = (version.flow_id, version.version)
    if key in _graphs:
        _graphs.move_to_end(key)
        return _graphs[key]
    try:  # a big export parses off the event loop
        drawn: dict[str, Any] | None = await asyncio.to_thread(graph_view, version.source)
    except Exception as exc:  # stored before this view existed and odd: describe, don't draw
        log.warning("flow.graph_unreadable", flow_id=version.flow_id, error=error_text(exc))
        drawn = None
    _graphs[key] = drawn
    while len(_graphs) > _GRAPHS_KEPT:
        _graphs.popitem(last=False)
    return drawn


async def list_versions(
    session: AsyncSession, flow_id: str, *, owner: str | None
) -> tuple[Flow, list[FlowVersion]]:
    """The flow and its versions, newest first; FlowNotFound when the caller cannot reach it.

    Versions outlive a deleted flow (runs point at them), and a flow id can be deleted and
    uploaded again by another owner: only versions stored since this flow was created are
    its own (the current one always is, even when its content was stored before). The
    first upload stores its version just before the flow row: ``_SAME_UPLOAD`` covers that.
    """
    flow = await get_flow(session, flow_id, owner=owner)
    rows = await session.scalars(
        select(FlowVersion)
        .where(
            FlowVersion.flow_id == flow.id,
            or_(
                FlowVersion.created_at >= flow.created_at - _SAME_UPLOAD,
                FlowVersion.version == flow.current_version,
            ),
        )
        .order_by(FlowVersion.created_at.desc(), FlowVersion.version)
    )
    return flow, list(rows)
