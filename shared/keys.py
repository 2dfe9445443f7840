"""API keys: random, shown once, stored as a SHA-256 hash, with scopes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import ApiKey, utcnow

SCOPES = frozenset({"runs:write", "runs:read", "flows:write", "admin"})
KEY_PREFIX = "ff_"


def hash_key(key: str) -> str:
    """SHA-256 of the key: enough for 256-bit random keys (no dictionary to attack)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    id: str
    name: str
    scopes: list[str]
    key: str  # the only time the plain key exists outside the client
    created_at: datetime


def check_scopes(wanted: list[str]) -> list[str]:
    """The scopes sorted and deduplicated; an unknown one (or none) is a ValueError."""
    scopes = sorted({s.strip() for s in wanted if s.strip()})
    unknown = set(scopes) - SCOPES
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {sorted(SCOPES)}, got {sorted(wanted)}")
    return scopes


def parse_scopes(text: str) -> list[str]:
    """Scopes from a comma list; an unknown one is an error, not a silent no-op."""
    return check_scopes(text.split(","))


async def create_key(session: AsyncSession, *, name: str, scopes: list[str]) -> NewKey:
    """Store a new key's hash; the returned plain key is never stored.

    The key's id is the owner of everything it creates (runs, flows, files): each key is
    its own tenant.
    """
    key_id = secrets.token_hex(8)
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(id=key_id, name=name, key_hash=hash_key(plain), scopes=scopes, created_at=utcnow())
    session.add(row)
    await session.flush()
    return NewKey(id=key_id, name=name, scopes=scopes, key=plain, created_at=row.created_at)


async def find_key(session: AsyncSession, plain: str) -> ApiKey | None:
    """The live (unrevoked) key with this plain value."""
    found = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plain)))
    if found is None or found.revoked_at is not None:
        return None
    return found


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all())


async def revoke_key(session: AsyncSession, key_id: str) -> ApiKey | None:
    """Mark a key revoked (a revoked one stays as it was); None when no key has this id.

    API replicas stop accepting it within their key cache time.
    """
    found = await session.get(ApiKey, key_id)
    if found is None:
        return None
    if found.revoked_at is None:
        found.revoked_at = utcnow()
        await session.flush()
    return found
