"""Who is calling, what they may do, and how fast: API keys, scopes, tenancy, rate limits.

Each route declares the scope it needs where it is defined (``dependencies=[requires(
RUNS_WRITE)]`` on the route, or on the ``APIRouter(...)`` that holds it; not on
``include_router``, whose dependencies the matched route does not carry). One app-wide
dependency (``guard``) runs for every route: it reads the declaration of the route that
matched (never the URL text), authenticates the ``Authorization: Bearer`` key once,
checks the scope, and spends a token of the caller's rate limit. A route that declares
nothing needs ``admin``, so a forgotten declaration fails closed. Routes read the caller
through ``Caller``. With auth off (the embedded default only) every caller is the
anonymous admin, rate-limited per IP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from redis.exceptions import RedisError

from api.ratelimit import rate_identity
from api.state import AppState, app_state
from shared.errors import InsufficientScope, RateLimited, Unauthorized
from shared.keys import find_key, hash_key
from shared.logging import error_text, get_logger
from shared.models import ANONYMOUS
from shared.settings import Settings
from shared.webhooks import SIGNATURE_HEADER

log = get_logger("api.auth")

RUNS_READ = "runs:read"
RUNS_WRITE = "runs:write"
FLOWS_WRITE = "flows:write"
ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    owner: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    @property
    def visible_owner(self) -> str | None:
        """The owner whose rows this caller may see; None means all."""
        return None if self.is_admin else self.owner

    def allows(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes


ANONYMOUS_ADMIN = Principal(owner=ANONYMOUS, scopes=frozenset({ADMIN}))


@dataclass(frozen=True)
class Requires:
    """A route's declared scope (None: open to anyone); ``guard`` enforces it."""

    scope: str | None
    open_when: str | None = None  # a boolean setting that opens the route (metrics_public)
    # A request signed with X-Flowfleet-Signature skips the key check: the route verifies
    # the signature (a flow's trigger secret) and spends the rate token itself.
    or_signed: bool = False

    async def __call__(self) -> None:
        return None  # a declaration: the check runs once, in ``guard``, before the route

    def needs(self, settings: Settings) -> str | None:
        if self.open_when is not None and getattr(settings, self.open_when):
            return None
        return self.scope


def requires(scope: str | None, *, open_when: str | None = None, or_signed: bool = False) -> Any:
    """Declare the scope a route or router needs: ``dependencies=[requires(RUNS_READ)]``.

    ``requires(None)`` declares a route open (health probes); say so explicitly.
    ``open_when`` names a boolean setting under which the route is open instead.
    """
    return Depends(Requires(scope, open_when, or_signed))


UNDECLARED = frozenset({ADMIN})  # a route that declares no scope is for admins only


def declared(dependant: Dependant) -> list[Requires]:
    """Every ``requires`` declaration of a route (its own and its ``APIRouter``'s), in order."""
    found: list[Requires] = []
    for dep in dependant.dependencies:
        if isinstance(dep.call, Requires):
            found.append(dep.call)
        found.extend(declared(dep))
    return found


# Per route object (held, so its id is never reused while cached); routes are not hashable.
_declarations: dict[int, tuple[APIRoute, list[Requires]]] = {}


def route_needs(route: APIRoute, settings: Settings) -> frozenset[str]:
    """The scopes a matched route needs (empty: open); declarations are read once per route."""
    cached = _declarations.get(id(route))
    if cached is not None and cached[0] is route:
        declarations = cached[1]
    else:
        declarations = declared(route.dependant)
        _declarations[id(route)] = (route, declarations)
    if not declarations:
        return UNDECLARED
    # Several declarations: each must hold, so none can loosen another.
    return frozenset(s for d in declarations if (s := d.needs(settings)) is not None)


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

    def clear(self) -> None:
        """Forget every lookup (a key was revoked here: this replica refuses it at once)."""
        self._entries.clear()


def _bearer(request: Request) -> str | None:
    """The key from ``Authorization: Bearer``, else from ``x-api-key`` (LangFlow's clients
    send only that header; it names the same keys)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key", "").strip() or None


async def _authenticate(request: Request, state: AppState) -> Principal:
    if not state.settings.auth_on:
        return ANONYMOUS_ADMIN
    token = _bearer(request)
    if token is None:
        raise Unauthorized(
            "send an API key as 'Authorization: Bearer <key>' (or an 'x-api-key' header)",
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
    route = request.scope.get("route")
    needs = route_needs(route, state.settings) if isinstance(route, APIRoute) else UNDECLARED
    if not needs:
        return
    if SIGNATURE_HEADER in request.headers and _signed_alternative(route):
        return  # the route checks the signature itself, then spends the rate token
    principal = await _authenticate(request, state)
    for scope in sorted(needs):
        if not principal.allows(scope):
            raise InsufficientScope(f"this needs the {scope!r} scope", required_scope=scope)
    request.state.principal = principal
    await spend_request_token(request, response, principal.owner)


def _signed_alternative(route: object) -> bool:
    return isinstance(route, APIRoute) and any(d.or_signed for d in declared(route.dependant))


async def spend_request_token(request: Request, response: Response, owner: str) -> None:
    """Spend one token of ``owner``'s rate limit for this request (429 when none is left)."""
    state = app_state(request)
    client = request.client.host if request.client else None
    identity = rate_identity(state.settings, owner, client)
    if state.settings.rate_limit_per_s <= 0:
        return
    try:
        decision = await state.rate_limiter.hit(identity)
    except RedisError as exc:
        # Fail open: reads still work from PostgreSQL while Redis is away (submits 503 anyway).
        log.warning("ratelimit.unavailable", error=error_text(exc))
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
