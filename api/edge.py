"""Checks on every request before routing: the Host it names, and NUL bytes in its URL.

With auth off (the embedded default) every caller is an admin, so a web page the user
visits must not be able to drive the local API: a DNS-rebinding page reaches it under its
own host name, which is refused here (browsers cannot forge Host). The chat endpoint's
content-type rule (``api.routes.openai_compat``) closes the cross-origin form POST.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import send_problem
from shared.errors import FlowfleetError, InvalidHost, InvalidRequest
from shared.settings import Settings

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
# Probes (kubelet, load balancers) name the pod's address; these answer nothing private.
_PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """The hosts requests may name; None when any may (auth on and no list configured)."""
    if settings.allowed_hosts:
        return frozenset(h.lower().strip("[]") for h in (*LOCAL_HOSTS, *settings.allowed_hosts))
    if settings.auth_on:
        return None
    return frozenset(LOCAL_HOSTS)


def host_of(header: str | None) -> str:
    """The host a Host header names, without its port or IPv6 brackets, lower case."""
    named = (header or "").strip().lower()
    if named.startswith("["):
        return named[1 : named.find("]")] if "]" in named else ""
    return named.rsplit(":", 1)[0] if named.count(":") == 1 else named


class EdgeMiddleware:
    """Answers 400 ``invalid_host`` for a Host not allowed, 422 for a NUL in the URL."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = allowed_hosts(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = self._check(scope)
        if error is None:
            await self.app(scope, receive, send)
            return
        await send_problem(scope, send, error)

    def _check(self, scope: Scope) -> FlowfleetError | None:
        if self.hosts is not None and scope.get("path") not in _PROBE_PATHS:
            host = host_of(Headers(scope=scope).get("host"))
            if host not in self.hosts:
                return InvalidHost(
                    f"Host {host!r} is not served here; use localhost or add it to "
                    "FLOWFLEET_ALLOWED_HOSTS"
                )
        if "\x00" in scope.get("path", ""):
            return InvalidRequest("the path contains a NUL character", field="path")
        query: bytes = scope.get("query_string") or b""
        if b"%00" in query or b"\x00" in query:
            for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if "\x00" in name or "\x00" in value:
                    field = name.replace("\x00", "?")
                    return InvalidRequest(
                        f"query parameter {field!r} contains a NUL character", field=field
                    )
        return None
