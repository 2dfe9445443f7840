"""API keys: random, shown once, stored as a SHA-256 hash, with scopes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

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


def parse_scopes(text: str) -> list[str]:
    """Scopes from a comma list; an unknown one is an error, not a silent no-op."""
    scopes = sorted({s.strip() for s in text.split(",") if s.strip()})
    unknown = set(scopes) - SCOPES
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {sorted(SCOPES)}, got {text!r}")
    return scopes


async def create_key(session: AsyncSession, *, name: str, scopes: list[str]) -> NewKey:
    """Store a new key's hash; the returned plain key is never stored."""
    key_id = secrets.token_hex(8)
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(id=key_id, name=name, key_hash=hash_key(plain), scopes=scopes))
    await session.flush()
    return NewKey(id=key_id, name=name, scopes=scopes, key=plain)


async def find_key(session: AsyncSession, plain: str) -> ApiKey | None:
    """The live (unrevoked) key with this plain value."""
    found = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plain)))
    if found is None or found.revoked_at is not None:
        return None
    return found


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all())


async def revoke_key(session: AsyncSession, key_id: str) -> bool:
    """Mark a key revoked; API replicas stop accepting it within their cache time."""
    found = await session.get(ApiKey, key_id)
    if found is None or found.revoked_at is not None:
        return False
    found.revoked_at = utcnow()
    await session.flush()
    return True
