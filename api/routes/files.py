"""Upload files for File nodes, and read, list and delete them (owner-scoped)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Query, Response, UploadFile, status
from pydantic import BaseModel

from api.auth import RUNS_READ, RUNS_WRITE, Caller, requires
from api.services import files as file_service
from api.state import Db, State
from shared.errors import FileTooLarge, FlowfleetError
from shared.logging import get_logger
from shared.models import StoredFile
from shared.settings import Settings

router = APIRouter(prefix="/v1", tags=["files"])
log = get_logger("api.files")
FILES_PATH = "/v1/files"


class FileOut(BaseModel):
    """A stored file's metadata; its id is what a File node's ``path`` names."""

    id: str
    name: str
    content_type: str
    size: int
    sha256: str
    owner: str
    created_at: datetime


class FilePage(BaseModel):
    items: list[FileOut]
    next_cursor: str | None


def file_out(stored: StoredFile) -> FileOut:
    return FileOut(
        id=stored.id,
        name=stored.name,
        content_type=stored.content_type,
        size=stored.size,
        sha256=stored.sha256,
        owner=stored.owner,
        created_at=stored.created_at,
    )


def body_limits(settings: Settings) -> dict[str, tuple[int, Callable[[], FlowfleetError]]]:
    """The request-body limit of an upload: the file limit plus its multipart framing."""

    def too_large() -> FlowfleetError:
        return FileTooLarge(
            f"the file is over the limit of {settings.max_file_bytes} bytes "
            "(FLOWFLEET_MAX_FILE_BYTES)",
            limit_bytes=settings.max_file_bytes,
        )

    return {FILES_PATH: (settings.max_file_body_bytes, too_large)}


@router.post(
    "/files",
    dependencies=[requires(RUNS_WRITE)],
    status_code=status.HTTP_201_CREATED,
    response_model=FileOut,
    responses={
        409: {"description": "file_quota_exceeded"},
        413: {"description": "file_too_large"},
        415: {"description": "unsupported_file_type"},
        422: {"description": "empty_file"},
    },
)
async def upload_file(
    file: Annotated[UploadFile, File(description="The file (multipart/form-data part 'file').")],
    db: Db,
    state: State,
    caller: Caller,
    response: Response,
) -> FileOut:
    """Store a file for File nodes; a run names it by the id answered here."""
    data = await file.read(state.settings.max_file_bytes + 1)
    stored = await file_service.upload(
        db, owner=caller.owner, name=file.filename, data=data, settings=state.settings
    )
    await db.commit()
    log.info("file.uploaded", file_id=stored.id, size=stored.size)
    response.headers["Location"] = f"{FILES_PATH}/{stored.id}"
    return file_out(stored)


@router.get("/files", dependencies=[requires(RUNS_READ)], response_model=FilePage)
async def list_files(
    db: Db,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> FilePage:
    """The caller's files, newest first."""
    found, next_cursor = await file_service.list_files(
        db, owner=caller.visible_owner, limit=limit, cursor=cursor
    )
    return FilePage(items=[file_out(f) for f in found], next_cursor=next_cursor)


def _content(stored: StoredFile) -> Response:
    # An attachment that is never sniffed: an uploaded HTML file must not run in the API's
    # origin when someone opens its URL.
    return Response(
        content=stored.content,
        media_type=stored.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.name)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/files/{file_id}",
    dependencies=[requires(RUNS_READ)],
    response_model=FileOut,
    responses={
        200: {
            "description": "the metadata, or with ?content=true the bytes",
            "content": {"application/octet-stream": {}},
        },
        404: {"description": "file_not_found"},
    },
)
async def get_file(
    file_id: str,
    db: Db,
    caller: Caller,
    content: Annotated[bool, Query(description="answer the file's bytes instead")] = False,
) -> FileOut | Response:
    """A file's metadata (``?content=true``: its bytes)."""
    stored = await file_service.get_file(
        db, file_id, owner=caller.visible_owner, with_content=content
    )
    return _content(stored) if content else file_out(stored)


@router.get(
    "/files/{file_id}/content",
    dependencies=[requires(RUNS_READ)],
    response_class=Response,
    responses={
        200: {"description": "the bytes", "content": {"application/octet-stream": {}}},
        404: {"description": "file_not_found"},
    },
)
async def get_file_content(file_id: str, db: Db, caller: Caller) -> Response:
    """A file's bytes, as an attachment."""
    stored = await file_service.get_file(db, file_id, owner=caller.visible_owner, with_content=True)
    return _content(stored)


@router.delete(
    "/files/{file_id}",
    dependencies=[requires(RUNS_WRITE)],
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "file_not_found"}},
)
async def delete_file(file_id: str, db: Db, caller: Caller) -> Response:
    """Delete a file; later runs that name it fail with ``file_not_found``."""
    await file_service.delete_file(db, file_id, owner=caller.visible_owner)
    await db.commit()
    log.info("file.deleted", file_id=file_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
