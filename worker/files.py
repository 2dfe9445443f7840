"""A run's files: its owner's uploaded files, read from the database (flows.files.FileSource).

A run reads only files whose owner is the run's owner; another owner's file and a deleted
one look the same (``file_not_found``). Metadata first, bytes only when the parsed text is
not already cached in this process (flows.files.PARSED, keyed by content hash).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows.files import FileInfo
from shared.errors import FileUnavailable
from shared.models import StoredFile


class RunFiles:
    """The files one run may read (its owner's)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], owner: str) -> None:
        self._sessions = sessions
        self._owner = owner

    def _missing(self, file_id: str) -> FileUnavailable:
        return FileUnavailable(
            f"no file with id {file_id!r} for this run's key; upload it with POST /v1/files"
        )

    async def info(self, file_id: str) -> FileInfo:
        query = select(
            StoredFile.id,
            StoredFile.name,
            StoredFile.size,
            StoredFile.sha256,
            StoredFile.content_type,
        ).where(StoredFile.id == file_id, StoredFile.owner == self._owner)
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        if row is None:
            raise self._missing(file_id)
        return FileInfo(row.id, row.name, row.size, row.sha256, row.content_type)

    async def content(self, file_id: str) -> bytes:
        query = select(StoredFile.content).where(
            StoredFile.id == file_id, StoredFile.owner == self._owner
        )
        async with self._sessions() as session:
            data = await session.scalar(query)
        if data is None:
            raise self._missing(file_id)
        return bytes(data)
