"""Per-owner retention policies (README "Retention"): an admin's overrides of the settings."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import RetentionPolicyNotFound
from shared.models import RetentionPolicy, utcnow


class RetentionPolicyIn(BaseModel):
    """Per field: null (or absent) follows the setting, 0 keeps forever (no cap), else days."""

    runs_days: float | None = Field(default=None, ge=0)
    events_days: float | None = Field(default=None, ge=0)
    messages_days: float | None = Field(default=None, ge=0)
    dead_letters_days: float | None = Field(default=None, ge=0)
    session_max_turns: int | None = Field(default=None, ge=0)


class RetentionPolicyOut(RetentionPolicyIn):
    owner: str


def policy_out(row: RetentionPolicy) -> RetentionPolicyOut:
    return RetentionPolicyOut(
        owner=row.owner,
        runs_days=row.runs_days,
        events_days=row.events_days,
        messages_days=row.messages_days,
        dead_letters_days=row.dead_letters_days,
        session_max_turns=row.session_max_turns,
    )


async def get_policy(session: AsyncSession, owner: str) -> RetentionPolicy:
    row = await session.get(RetentionPolicy, owner)
    if row is None:
        raise RetentionPolicyNotFound(
            f"no retention policy for owner {owner!r}; the settings apply"
        )
    return row


async def put_policy(session: AsyncSession, owner: str, body: RetentionPolicyIn) -> RetentionPolicy:
    """Create or replace the owner's policy (every field: absent means follow the setting)."""
    row = await session.get(RetentionPolicy, owner)
    if row is None:
        row = RetentionPolicy(owner=owner)
        session.add(row)
    for name, value in body.model_dump().items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    await session.flush()
    return row


async def delete_policy(session: AsyncSession, owner: str) -> None:
    await session.delete(await get_policy(session, owner))
    await session.flush()
