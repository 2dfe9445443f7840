"""Size limits: the request body (enforced while reading), inputs, tweaks, flows, batches."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import send_problem
from shared.errors import FlowfleetError, PayloadTooLarge
from shared.schemas import RunCreate
from shared.settings import Settings


class BodyLimitMiddleware:
    """Answers 413 problem+json when a body exceeds ``max_bytes``.

    ``paths`` gives a path its own limit and error (file uploads: the file limit).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        paths: Mapping[str, tuple[int, Callable[[], FlowfleetError]]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = dict(paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, error = self.paths.get(scope.get("path", ""), (self.max_bytes, None))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, send, limit, error)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, send, limit, error)

    async def _reject(
        self,
        scope: Scope,
        send: Send,
        limit: int,
        error_for: Callable[[], FlowfleetError] | None,
    ) -> None:
        error = (
            error_for()
            if error_for is not None
            else PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        )
        await send_problem(scope, send, error)


class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so the framework renders it as a 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body is over the limit of {max_bytes} bytes")


def _json_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str))


def check_run_limits(body: RunCreate, settings: Settings) -> None:
    """Input length, tweaks and metadata sizes: cheap checks before anything is written."""
    if body.input is not None and len(body.input) > settings.max_input_chars:
        raise PayloadTooLarge(
            f"input is {len(body.input)} characters; the limit is {settings.max_input_chars}",
            field="input",
        )
    if body.tweaks and _json_size(body.tweaks) > settings.max_tweaks_bytes:
        raise PayloadTooLarge(
            f"tweaks are over the limit of {settings.max_tweaks_bytes} bytes", field="tweaks"
        )
    if body.metadata and _json_size(body.metadata) > settings.max_metadata_bytes:
        raise PayloadTooLarge(
            f"metadata is over the limit of {settings.max_metadata_bytes} bytes",
            field="metadata",
        )


def check_flow_upload(raw: bytes, settings: Settings) -> None:
    """An uploaded export's size, before anything reads it.

    Nesting depth, node and edge counts are checked by the parser (flows/langflow/document.py)
    after group nodes are inlined, so bare graphs and groups count too.
    """
    if len(raw) > settings.max_flow_bytes:
        raise PayloadTooLarge(f"the flow is over the limit of {settings.max_flow_bytes} bytes")
