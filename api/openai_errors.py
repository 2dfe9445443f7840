"""Errors in OpenAI's shape, for the OpenAI-compatible doors (chat completions, Responses):
OpenAI clients parse this body and raise their own exceptions from it."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from shared.errors import FlowfleetError


def openai_error(
    status: int,
    message: str,
    code: str,
    kind: str | None = None,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in OpenAI's shape."""
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def from_flowfleet(exc: FlowfleetError) -> JSONResponse:
    """A flowfleet error (a refused submit) in OpenAI's shape, its field as ``param``."""
    field = exc.extra.get("field")
    return openai_error(
        exc.status,
        exc.message,
        exc.code,
        param=None if field is None else str(field),
        headers=exc.headers(),
    )
