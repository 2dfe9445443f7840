"""Every error a client can see, rendered as RFC 9457 ``application/problem+json``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.types import Scope, Send

from shared.db_errors import client_error
from shared.errors import BackendUnavailable, FlowfleetError, InvalidRequest
from shared.logging import error_text, get_logger

log = get_logger("api.problems")
PROBLEM_JSON = "application/problem+json"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def problem_response(
    error: FlowfleetError, request: Request, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        error.problem(instance=request.url.path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


async def send_problem(scope: Scope, send: Send, error: FlowfleetError) -> None:
    """``error`` as problem+json from ASGI middleware, which answers before FastAPI's
    exception handlers could."""
    body = json.dumps(error.problem(instance=scope.get("path"))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            # Its loc is ("body", <character offset>): name the body, say where it breaks.
            where = err.get("loc", ())[-1:]
            why = (err.get("ctx") or {}).get("error", "malformed")
            at = f", at character {where[0]}" if where and isinstance(where[0], int) else ""
            message = f"not valid JSON ({why}{at}); send a JSON object"
            errors.append({"field": "body", "message": message})
            continue
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        errors.append({"field": ".".join(loc) or "body", "message": err.get("msg", "invalid")})
    return errors


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into problem details."""

    @app.exception_handler(FlowfleetError)
    async def _flowfleet(request: Request, exc: FlowfleetError) -> JSONResponse:
        return problem_response(exc, request, exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(InvalidRequest(summary, errors=errors), request)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        error = FlowfleetError(str(exc.detail))
        error.status = exc.status_code
        error.code = _HTTP_CODES.get(exc.status_code, "http_error")
        error.title = error.code.replace("_", " ").capitalize()
        return problem_response(error, request, dict(exc.headers or {}))

    @app.exception_handler(DataError)
    @app.exception_handler(IntegrityError)
    @app.exception_handler(UnicodeError)
    async def _bad_data(request: Request, exc: Exception) -> JSONResponse:
        # The request's own value (a NUL in a query parameter, an over-long name): retrying
        # cannot help, so it is the client's 4xx, not "database unreachable".
        error = client_error(exc) or InvalidRequest("a value in the request cannot be stored")
        log.info("api.bad_data", error=error_text(exc), path=request.url.path)
        return problem_response(error, request)

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        # A body nested thousands deep exhausts a recursive parser or walk.
        error = InvalidRequest("the request nests too deeply; flatten it", field="body")
        return problem_response(error, request)

    @app.exception_handler(RedisError)
    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(TimeoutError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("api.backend_unavailable", error=error_text(exc), path=request.url.path)
        error = BackendUnavailable("the database or Redis is unreachable; retry shortly")
        return problem_response(error, request, error.headers())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api.unhandled_error", path=request.url.path)
        return problem_response(FlowfleetError("unexpected error; it has been logged"), request)
