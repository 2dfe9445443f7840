"""Uploaded files: store, read, list, delete (owner-scoped), and the files a run will read.

``owner`` on reads is the caller's visible owner (a key's id, None for an admin): another
owner's file is answered exactly as a missing one (404 ``file_not_found``). Uploads belong
to the caller's own owner id, and a run may use only files of its own owner (checked here
at submit, and again by the worker when it reads them).
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from api.services import flows as flow_service
from api.services.flows import FlowRef
from flows.files import FileLimits, check_upload, content_type
from shared.errors import (
    FileNotFound,
    FileQuotaExceeded,
    FileRequired,
    InvalidRequest,
)
from shared.models import Flow, StoredFile, utcnow
from shared.settings import Settings

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_name(raw: str | None) -> str:
    """The file's own name: no folders, no control characters, at most 255 characters."""
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    name = _CONTROL.sub("", name).strip()
    if not name or name in (".", ".."):
        raise InvalidRequest("the upload has no file name; name the file part", field="file")
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 254 - len(ext)] + dot + ext) if dot and len(ext) < 16 else name[:255]
    return name


def _not_found(file_id: str) -> FileNotFound:
    return FileNotFound(f"no file with id {file_id!r}; GET /v1/files lists yours", file_id=file_id)


async def upload(
    session: AsyncSession, *, owner: str, name: str | None, data: bytes, settings: Settings
) -> StoredFile:
    """Check and store one file for ``owner``; refuses what a run could never parse."""
    name = clean_name(name)
    check_upload(name, data, FileLimits.from_settings(settings))
    held, held_bytes = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(StoredFile.size), 0)).where(
                StoredFile.owner == owner
            )
        )
    ).one()
    if held >= settings.max_files_per_owner:
        raise FileQuotaExceeded(
            f"this key holds {held} files, the most allowed (FLOWFLEET_MAX_FILES_PER_OWNER); "
            "delete some with DELETE /v1/files/{id}"
        )
    if held_bytes + len(data) > settings.max_owner_file_bytes:
        raise FileQuotaExceeded(
            f"this key holds {held_bytes} bytes of files; this one would pass the limit of "
            f"{settings.max_owner_file_bytes} (FLOWFLEET_MAX_OWNER_FILE_BYTES); delete some "
            "with DELETE /v1/files/{id}"
        )
    stored = StoredFile(
        id=str(uuid.uuid4()),
        owner=owner,
        name=name,
        content_type=content_type(name),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content=data,
        created_at=utcnow(),
    )
    session.add(stored)
    await session.flush()
    return stored


async def get_file(
    session: AsyncSession, file_id: str, *, owner: str | None, with_content: bool = False
) -> StoredFile:
    """A file's metadata (and bytes with ``with_content``), if this caller may see it."""
    query = select(StoredFile).where(StoredFile.id == file_id)
    if owner is not None:
        query = query.where(StoredFile.owner == owner)
    if with_content:
        query = query.options(undefer(StoredFile.content))
    found = (await session.scalars(query)).one_or_none()
    if found is None:
        raise _not_found(file_id)
    return found


async def delete_file(session: AsyncSession, file_id: str, *, owner: str | None) -> None:
    """Remove a file; runs that name it afterwards fail with ``file_not_found``."""
    found = await get_file(session, file_id, owner=owner)
    await session.delete(found)
    await session.flush()


def _encode_cursor(stored: StoredFile) -> str:
    raw = f"{stored.created_at.isoformat()}|{stored.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, file_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), file_id
    except ValueError as exc:
        raise InvalidRequest("cursor is not one this API returned", field="cursor") from exc


def list_files_query(
    *, owner: str | None, limit: int = 50, cursor: str | None = None
) -> Select[StoredFile]:
    """The list's statement, one row more than ``limit`` (a page follows)."""
    query = select(StoredFile)
    if owner is not None:
        query = query.where(StoredFile.owner == owner)
    if cursor:
        created, file_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                StoredFile.created_at < created,
                and_(StoredFile.created_at == created, StoredFile.id < file_id),
            )
        )
    return query.order_by(StoredFile.created_at.desc(), StoredFile.id.desc()).limit(limit + 1)


async def list_files(
    session: AsyncSession, *, owner: str | None, limit: int = 50, cursor: str | None = None
) -> tuple[list[StoredFile], str | None]:
    """The caller's files, newest first; keyset pagination on (created_at, id)."""
    query = list_files_query(owner=owner, limit=limit, cursor=cursor)
    found = list((await session.scalars(query)).all())
    next_cursor = _encode_cursor(found[limit - 1]) if len(found) > limit else None
    return found[:limit], next_cursor


# (flow id, version) -> ((File node id, its exported path value), ...); versions never change.
_file_nodes: OrderedDict[tuple[str, str], tuple[tuple[str, Any], ...]] = OrderedDict()
_FILE_NODES_KEPT = 256


async def _flow_file_nodes(
    session: AsyncSession, flow: Flow | FlowRef
) -> tuple[tuple[str, Any], ...]:
    key = (flow.id, flow.current_version)
    found = _file_nodes.get(key)
    if found is not None:
        return found
    from flows.langflow.document import parse_document
    from flows.langflow.file_node import FILE_KIND, PATH_FIELD

    version = await flow_service.get_version(session, flow.id, flow.current_version)
    doc = parse_document(version.source)
    found = tuple(
        (node.id, node.template.get(PATH_FIELD, {}).get("value"))
        for node in doc.nodes.values()
        if node.kind == FILE_KIND
    )
    _file_nodes[key] = found
    if len(_file_nodes) > _FILE_NODES_KEPT:
        _file_nodes.popitem(last=False)
    return found


async def check_run_files(
    session: AsyncSession,
    flow: Flow | FlowRef,
    tweaks: Mapping[str, Any] | None,
    *,
    owner: str,
    settings: Settings,
) -> None:
    """Every File node of the flow has files, at most the limit, all the run owner's.

    A flow without File nodes costs a dict lookup (after its version's first submit).
    """
    if flow.kind != "langflow":
        return
    nodes = await _flow_file_nodes(session, flow)
    if not nodes:
        return
    from flows.langflow.file_node import missing_file_message, run_file_ids

    wanted: list[str] = []
    for node_id, exported in nodes:
        try:
            ids = run_file_ids(node_id, exported, tweaks)
        except ValueError as exc:
            raise InvalidRequest(
                f"File node {node_id}: {exc}", field="tweaks", node_id=node_id
            ) from exc
        if not ids:
            raise FileRequired(missing_file_message(node_id), node_id=node_id, field="path")
        if len(ids) > settings.max_files_per_node:
            raise InvalidRequest(
                f"File node {node_id} names {len(ids)} files; the limit is "
                f"{settings.max_files_per_node} (FLOWFLEET_MAX_FILES_PER_NODE)",
                node_id=node_id,
                field="path",
            )
        wanted.extend(i for i in ids if i not in wanted)
    held = set(
        await session.scalars(
            select(StoredFile.id).where(StoredFile.id.in_(wanted), StoredFile.owner == owner)
        )
    )
    missing = [i for i in wanted if i not in held]
    if missing:
        raise FileNotFound(
            f"no file with id {missing[0]!r} for this key; upload the file with POST /v1/files "
            "and pass the id it answers",
            file_id=missing[0],
        )
