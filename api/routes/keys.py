"""API keys over HTTP for the console (admin only): list, create, revoke.

The same operations as ``flowfleet keys``; a created key's plain value is answered once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel, Field

from api.auth import ADMIN, requires
from api.services import keys as key_service
from api.state import Db, app_state

router = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[requires(ADMIN)])
KeyId = Annotated[str, Path(min_length=1, max_length=32)]


class KeyOut(BaseModel):
    id: str  # also the owner id of everything the key creates
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class KeyList(BaseModel):
    items: list[KeyOut]


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=8)


class KeyCreated(BaseModel):
    id: str
    name: str
    scopes: list[str]
    key: str  # shown once: only its hash is stored
    created_at: datetime


@router.get("", response_model=KeyList)
async def list_keys(db: Db) -> KeyList:
    """Every key with its scopes and whether it is revoked; never a key's value."""
    rows = await key_service.list_keys(db)
    return KeyList(
        items=[
            KeyOut(
                id=k.id,
                name=k.name,
                scopes=list(k.scopes),
                created_at=k.created_at,
                revoked_at=k.revoked_at,
            )
            for k in rows
        ]
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyCreated,
    responses={422: {"description": "unknown_scope, invalid_request"}},
)
async def create_key(body: KeyCreate, db: Db) -> KeyCreated:
    """Create a key; the answer holds its plain value, which cannot be read again."""
    new = await key_service.create_key(db, name=body.name, scopes=body.scopes)
    await db.commit()
    return KeyCreated(
        id=new.id, name=new.name, scopes=new.scopes, key=new.key, created_at=new.created_at
    )


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "key_not_found"}},
)
async def revoke_key(key_id: KeyId, db: Db, request: Request) -> Response:
    """Revoke a key (idempotent); other API replicas refuse it within their key cache time."""
    await key_service.revoke_key(db, key_id)
    await db.commit()
    app_state(request).key_cache.clear()  # this replica refuses it from the next request
    return Response(status_code=status.HTTP_204_NO_CONTENT)
