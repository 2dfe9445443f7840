"""The flow registry: list, describe, upload a LangFlow export, delete.

Reading needs ``runs:read`` and shows a key its own flows and the shared ones; writing
needs ``flows:write`` and reaches only the key's own flows (an admin's reach all).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from api.auth import FLOWS_WRITE, RUNS_READ, Caller, requires
from api.limits import check_flow_upload
from api.services import flow_views
from api.services import flows as flow_service
from api.state import Db, State
from flows.base import FlowValidationError
from flows.definitions import FLOW_ID_PATTERN
from flows.routing import BackendNotAllowed, ModelSpec, route
from shared.errors import InvalidFlow
from shared.models import Flow, FlowVersion
from shared.schemas import FlowList, FlowOut, FlowSummary, FlowVersionOut, FlowVersions

router = APIRouter(prefix="/v1/flows", tags=["flows"])
FlowId = Annotated[str, Path(pattern=FLOW_ID_PATTERN)]


def _summary(flow: Flow) -> FlowSummary:
    return FlowSummary(
        id=flow.id,
        name=flow.name,
        description=flow.description,
        kind=flow.kind,
        owner=flow.owner,
        version=flow.current_version,
        updated_at=flow.updated_at,
    )


def _backends(state: State, models: list[str]) -> list[str]:
    names: list[str] = []
    for model in models or [None]:  # type: ignore[list-item]
        try:
            names.append(route(ModelSpec(model_name=model), state.settings).name)
        except BackendNotAllowed:
            continue
    return sorted(set(names))


async def _flow_out(flow: Flow, version: FlowVersion, state: State) -> FlowOut:
    meta = version.meta
    models = list(meta.get("models", []))
    return FlowOut(
        **_summary(flow).model_dump(),
        inputs=list(meta.get("inputs", [])),
        components=list(meta.get("components", [])),
        models=models,
        backends=_backends(state, models),
        uses_input=bool(meta.get("uses_input", True)),
        uses_history=bool(meta.get("uses_history", False)),
        options=flow.options or {},
        graph=await flow_views.graph(version),
    )


@router.get("", response_model=FlowList, dependencies=[requires(RUNS_READ)])
async def list_flows(db: Db, caller: Caller) -> FlowList:
    """The flows this key may run: its own and the shared ones (an admin's: all)."""
    flows = await flow_service.list_flows(db, owner=caller.visible_owner)
    return FlowList(items=[_summary(f) for f in flows])


@router.get(
    "/{flow_id}",
    response_model=FlowOut,
    responses={404: {"description": "flow_not_found"}},
    dependencies=[requires(RUNS_READ)],
)
async def get_flow(flow_id: FlowId, db: Db, state: State, caller: Caller) -> FlowOut:
    """Name, description, version, inputs, components, backends and graph of a flow."""
    flow = await flow_service.get_flow(db, flow_id, owner=caller.visible_owner)
    version = await flow_service.get_version(db, flow.id, flow.current_version)
    return await _flow_out(flow, version, state)


@router.get(
    "/{flow_id}/versions",
    response_model=FlowVersions,
    responses={404: {"description": "flow_not_found"}},
    dependencies=[requires(RUNS_READ)],
)
async def list_versions(flow_id: FlowId, db: Db, caller: Caller) -> FlowVersions:
    """The flow's stored versions, newest first, and which one new runs get."""
    flow, versions = await flow_views.list_versions(db, flow_id, owner=caller.visible_owner)
    return FlowVersions(
        flow_id=flow.id,
        items=[
            FlowVersionOut(
                version=v.version,
                kind=v.kind,
                created_at=v.created_at,
                current=v.version == flow.current_version,
            )
            for v in versions
        ],
    )


@router.put(
    "/{flow_id}",
    response_model=FlowOut,
    responses={
        201: {"model": FlowOut},
        403: {"description": "insufficient_scope: a shared flow, changed by admins only"},
        409: {"description": "flow_id_taken: another owner holds this id"},
        422: {"description": "invalid_flow"},
    },
    dependencies=[requires(FLOWS_WRITE)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def put_flow(
    flow_id: FlowId, request: Request, db: Db, state: State, caller: Caller, response: Response
) -> FlowOut:
    """Upload a LangFlow export as it was exported; it is validated, never executed."""
    raw = await request.body()
    check_flow_upload(raw, state.settings)
    try:
        text = raw.decode("utf-8")
        defn = await flow_service.describe_upload(state.settings, flow_id, text)
    except UnicodeDecodeError as exc:
        raise InvalidFlow("the body must be UTF-8 JSON (a LangFlow export)") from exc
    except FlowValidationError as exc:
        problems = [p.as_json() for p in exc.problems]
        raise InvalidFlow(f"{len(problems)} problem(s): {exc}", problems=problems) from exc
    existed = await db.get(Flow, flow_id) is not None
    flow = await flow_service.save_definition(db, defn, origin="upload", owner=caller.visible_owner)
    await db.commit()
    version = await flow_service.get_version(db, flow.id, flow.current_version)
    if not existed:
        response.status_code = status.HTTP_201_CREATED
    return await _flow_out(flow, version, state)


@router.delete(
    "/{flow_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "flow_not_found"}},
    dependencies=[requires(FLOWS_WRITE)],
)
async def delete_flow(flow_id: FlowId, db: Db, caller: Caller) -> Response:
    """Remove a flow; runs already queued finish on the version they were given."""
    await flow_service.delete_flow(db, flow_id, owner=caller.visible_owner)
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
