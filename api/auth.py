"""Who is calling. With auth off (the embedded default) every caller is the anonymous admin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from shared.models import ANONYMOUS


@dataclass(frozen=True)
class Principal:
    owner: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    @property
    def visible_owner(self) -> str | None:
        """The owner whose rows this caller may see; None means all."""
        return None if self.is_admin else self.owner


async def get_principal() -> Principal:
    return Principal(owner=ANONYMOUS, scopes=frozenset({"admin"}))


Caller = Annotated[Principal, Depends(get_principal)]
