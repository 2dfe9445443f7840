"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.auth import requires
from api.state import State
from shared.schemas import Health

# Probes answer without a key: load balancers and orchestrators call them.
router = APIRouter(tags=["health"], dependencies=[requires(None)])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(state: State) -> JSONResponse:
    """The database and Redis answer; 503 otherwise."""
    checks: dict[str, str] = {}

    async def database() -> None:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    for name, probe in (("database", database), ("redis", state.redis.ping)):
        try:
            await asyncio.wait_for(probe(), timeout=2)  # type: ignore[operator]
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready
            checks[name] = f"unavailable: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
