"""Who is calling, what they may do, and how fast: API keys, scopes, tenancy, rate limits.

One dependency (``guard``) runs for every route of the app: it authenticates the
``Authorization: Bearer`` key, checks the scope the route needs, and spends a token
of the caller's rate limit. Routes read the result through ``Caller``. With auth off
(the embedded default only) every caller is the anonymous admin, rate-limited per IP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from redis.exceptions import RedisError

from api.ratelimit import rate_identity
from api.state import AppState, app_state
from shared.errors import InsufficientScope, RateLimited, Unauthorized
from shared.keys import find_key, hash_key
from shared.logging import get_logger
from shared.models import ANONYMOUS

log = get_logger("api.auth")

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"})


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

    def allows(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes


ANONYMOUS_ADMIN = Principal(owner=ANONYMOUS, scopes=frozenset({"admin"}))


def required_scope(method: str, path: str) -> str | None:
    """The scope a request needs, decided here once so new routes get a sane default."""
    if path in OPEN_PATHS:
        return None
    if path == "/metrics":
        return "admin"
    if (
        path.startswith("/v1/flows")
        and method in {"PUT", "DELETE", "PATCH"}
        and ("/runs" not in path)
    ):
        return "flows:write"
    if path.startswith("/v1/keys"):
        return "admin"
    if method in {"GET", "HEAD", "OPTIONS"}:
        return "runs:read"
    return "runs:write"


class KeyCache:
    """Key lookups cached briefly in-process, so the submit path skips a query per request."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    async def principal(self, state: AppState, plain: str) -> Principal | None:
        digest = hash_key(plain)  # the cache never holds plain keys
        hit = self._entries.get(digest)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        async with state.sessions() as session:
            key = await find_key(session, plain)
        found = None if key is None else Principal(owner=key.id, scopes=frozenset(key.scopes))
        if len(self._entries) > 10_000:  # bounded: a flood of bad keys cannot grow it forever
            self._entries.clear()
        self._entries[digest] = (now + self.ttl_s, found)
        return found


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _authenticate(request: Request, state: AppState) -> Principal:
    if not state.settings.auth_on:
        return ANONYMOUS_ADMIN
    token = _bearer(request)
    if token is None:
        raise Unauthorized(
            "send an API key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await state.key_cache.principal(state, token)
    if principal is None:
        raise Unauthorized(
            "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


async def guard(request: Request, response: Response) -> None:
    """Authenticate, authorise and rate-limit one request; the result is ``Caller``."""
    state = app_state(request)
    path = request.url.path
    scope = required_scope(request.method, path)
    if scope is None or (path == "/metrics" and state.settings.metrics_public):
        return
    principal = await _authenticate(request, state)
    if not principal.allows(scope):
        raise InsufficientScope(f"this needs the {scope!r} scope", required_scope=scope)
    request.state.principal = principal
    client = request.client.host if request.client else None
    identity = rate_identity(state.settings, principal.owner, client)
    if state.settings.rate_limit_per_s <= 0:
        return
    try:
        decision = await state.rate_limiter.hit(identity)
    except RedisError as exc:
        # Fail open: reads still work from PostgreSQL while Redis is away (submits 503 anyway).
        log.warning("ratelimit.unavailable", error=type(exc).__name__)
        return
    if not decision.allowed:
        raise RateLimited(
            f"over {state.settings.rate_limit_per_s:g} requests/s "
            f"(burst {state.settings.rate_limit_burst}); retry after the Retry-After seconds",
            headers=decision.headers(),
        )
    response.headers.update(decision.headers())


async def get_principal(request: Request) -> Principal:
    """The caller ``guard`` authenticated for this request."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    if not app_state(request).settings.auth_on:
        return ANONYMOUS_ADMIN
    raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")


Caller = Annotated[Principal, Depends(get_principal)]
