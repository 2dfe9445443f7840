"""API keys as the console manages them: list, create, revoke (the CLI shares shared/keys.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from shared import keys
from shared.errors import KeyNotFound, UnknownScope
from shared.models import ApiKey


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    """Every key, oldest first, revoked ones included (never a plain value or a hash)."""
    return await keys.list_keys(session)


async def create_key(session: AsyncSession, *, name: str, scopes: list[str]) -> keys.NewKey:
    """A new key (its own owner); UnknownScope when a scope is not one of ``keys.SCOPES``."""
    try:
        wanted = keys.check_scopes(scopes)
    except ValueError as exc:
        raise UnknownScope(str(exc), field="scopes", allowed=sorted(keys.SCOPES)) from exc
    return await keys.create_key(session, name=name, scopes=wanted)


async def revoke_key(session: AsyncSession, key_id: str) -> ApiKey:
    """Revoke a key; revoking a revoked key changes nothing. KeyNotFound for an unknown id."""
    found = await keys.revoke_key(session, key_id)
    if found is None:
        raise KeyNotFound(f"no API key with id {key_id!r}")
    return found
