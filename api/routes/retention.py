"""Per-owner retention policies, for admins (README "Retention"). The owner is an API key's
id (the owner of its runs), or ``anonymous`` for runs made with auth off."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from api.auth import ADMIN, requires
from api.services import retention as retention_service
from api.services.retention import RetentionPolicyIn, RetentionPolicyOut, policy_out
from api.state import Db

router = APIRouter(prefix="/v1/retention", tags=["retention"], dependencies=[requires(ADMIN)])
Owner = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "retention_policy_not_found"}}


@router.get("/{owner}", response_model=RetentionPolicyOut, responses=NOT_FOUND)
async def get_policy(owner: Owner, db: Db) -> RetentionPolicyOut:
    """The owner's overrides (404: none, the settings apply)."""
    return policy_out(await retention_service.get_policy(db, owner))


@router.put("/{owner}", response_model=RetentionPolicyOut)
async def put_policy(owner: Owner, body: RetentionPolicyIn, db: Db) -> RetentionPolicyOut:
    """Create or replace the owner's overrides; the next retention round applies them."""
    row = await retention_service.put_policy(db, owner, body)
    await db.commit()
    return policy_out(row)


@router.delete("/{owner}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_policy(owner: Owner, db: Db) -> Response:
    """Drop the owner's overrides: the settings apply again."""
    await retention_service.delete_policy(db, owner)
    await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
