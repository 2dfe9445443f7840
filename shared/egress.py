"""The one egress policy: every outbound request a flow can cause goes through ``fetch``.

A flow (or a client's webhook URL) names URLs; the worker must not become a way into the
network it runs in. So a host is resolved, and every address it resolves to must be a
public unicast address — loopback, private (RFC 1918, ULA), link-local, shared (CGNAT),
unspecified, multicast, reserved and cloud metadata addresses are refused — unless the
operator's allow-list admits the host by name (``egress_allowed_hosts``) or the address by
network (``egress_allowed_cidrs``). The metadata addresses are admitted only when listed
exactly (a /32 or /128): a broad CIDR such as 169.254.0.0/16 never opens them by accident.

The check happens where the socket is opened (``_CheckedBackend.connect_tcp``), and the
connection goes to the address that was checked, never to a second lookup: DNS rebinding
(first answer public, second answer 127.0.0.1) cannot get around it. TLS still verifies
the certificate against the URL's host name (SNI and Host stay the name). Redirects are
followed by hand, each hop checked again; proxies from the environment are ignored (a
proxy would make the connection on our behalf, unchecked). Responses are capped in size
and the whole exchange in time.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import json as jsonlib
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpcore
import httpx

from shared.errors import FlowfleetError
from shared.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata services (AWS/GCP/Azure/OpenStack, AWS over IPv6, Alibaba).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class EgressDenied(FlowfleetError):
    """The URL's host or an address it resolves to is not reachable under the policy."""

    status, code, title = 403, "egress_denied", "Outbound request refused by the egress policy"


class EgressFailed(FlowfleetError):
    """The outbound request was allowed but did not complete (connect, TLS, protocol)."""

    status, code, title = 502, "egress_failed", "Outbound request failed"


class EgressTimeout(EgressFailed):
    code, title = "egress_timeout", "Outbound request exceeded its time limit"


class EgressTooLarge(EgressFailed):
    code, title = "egress_too_large", "Outbound response exceeded its size limit"


@dataclass(frozen=True)
class EgressResponse:
    """A completed response: the body is read in full (within the size cap)."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str  # the URL that answered, after redirects

    def text(self) -> str:
        charset = _charset(self.headers.get("content-type", "")) or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why this address is refused by default (None: a public unicast address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return refusal_reason(ip.ipv4_mapped)  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


class EgressPolicy:
    """Which hosts and addresses outbound requests may reach (one per settings)."""

    def __init__(self, allowed_hosts: Iterable[str], allowed_cidrs: Iterable[str]) -> None:
        self.allowed_hosts = tuple(h.lower().rstrip(".") for h in allowed_hosts)
        self.allowed_networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(c, strict=False) for c in allowed_cidrs
        )

    def host_allowed(self, host: str) -> bool:
        """Whether the operator admitted this host by name (fnmatch patterns)."""
        name = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.allowed_hosts)

    def address_allowed(self, ip: IPAddress) -> bool:
        if refusal_reason(ip) is None:
            return True
        if ip in METADATA_ADDRESSES:
            # Only an exact entry opens a metadata address, never a range around it.
            return any(n.num_addresses == 1 and ip in n for n in self.allowed_networks)
        plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        return any(ip in n or (plain is not None and plain in n) for n in self.allowed_networks)

    def check(self, host: str, addresses: list[IPAddress]) -> list[IPAddress]:
        """The addresses if every one is allowed; EgressDenied naming the first refused."""
        if self.host_allowed(host):
            return addresses
        for ip in addresses:
            if not self.address_allowed(ip):
                raise EgressDenied(
                    f"outbound request to {host!r} refused: it resolves to {ip}, "
                    f"{refusal_reason(ip)}; an operator can allow it with "
                    "FLOWFLEET_EGRESS_ALLOWED_HOSTS or FLOWFLEET_EGRESS_ALLOWED_CIDRS",
                    host=host,
                    address=str(ip),
                )
        return addresses

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` and check every address it has; the checked list."""
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            literal: IPAddress | None = ipaddress.ip_address(bare)
        except ValueError:
            literal = None
        if literal is not None:
            return self.check(host, [literal])
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                bare, port, type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError) as exc:
            raise EgressFailed(f"cannot resolve {host!r}: {exc}", host=host) from exc
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise EgressFailed(f"cannot resolve {host!r}: no addresses", host=host)
        return self.check(host, addresses)


def egress_policy(settings: Settings) -> EgressPolicy:
    """The policy the settings' allow-lists describe."""
    return EgressPolicy(settings.egress_allowed_hosts, settings.egress_allowed_cidrs)


def _split(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressDenied(f"outbound URL must be http or https with a host, got {url[:200]!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise EgressDenied(f"outbound URL has an invalid port: {url[:200]!r}") from exc
    return parts.scheme, parts.hostname, port


async def check_url(settings: Settings, url: str) -> list[IPAddress]:
    """Resolve the URL's host and check it; its addresses, or EgressDenied."""
    _scheme, host, port = _split(url)
    return await egress_policy(settings).resolve(host, port)


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Opens each TCP connection to an address the policy checked, resolved once."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._policy.resolve(host, port)
        error: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # resolve returns at least one address
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressDenied("outbound requests over unix sockets are refused")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


_SSL_CONTEXT: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = ssl.create_default_context(cafile=certifi.where())
    return _SSL_CONTEXT


async def fetch(
    settings: Settings,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    content: bytes | str | None = None,
    timeout_s: float | None = None,
    max_bytes: int | None = None,
    follow_redirects: bool = True,
) -> EgressResponse:
    """One outbound request under the egress policy, redirects re-checked, size and time capped."""
    timeout = min(timeout_s or settings.egress_timeout_s, settings.egress_timeout_s)
    limit = min(max_bytes or settings.egress_max_bytes, settings.egress_max_bytes)
    request = httpx.Request(
        method.upper(), url, headers=headers, params=params, json=json, content=content
    )
    request.headers.setdefault("Accept-Encoding", "identity")  # no decompression bombs
    await check_url(settings, str(request.url))  # a clear refusal before any socket
    pool = httpcore.AsyncConnectionPool(
        ssl_context=_ssl_context(),
        network_backend=_CheckedBackend(egress_policy(settings)),
        max_connections=4,
    )
    try:
        async with asyncio.timeout(timeout):
            return await _exchange(pool, request, limit, follow_redirects, settings)
    except TimeoutError as exc:
        raise EgressTimeout(
            f"outbound request to {request.url.host!r} took longer than {timeout:g} s",
            host=request.url.host,
        ) from exc
    finally:
        await pool.aclose()


async def _exchange(
    pool: httpcore.AsyncConnectionPool,
    request: httpx.Request,
    limit: int,
    follow_redirects: bool,
    settings: Settings,
) -> EgressResponse:
    for _hop in range(settings.egress_max_redirects + 1):
        status, response_headers, body = await _send(pool, request, limit)
        location = response_headers.get("location")
        if not (follow_redirects and status in REDIRECT_STATUSES and location):
            return EgressResponse(status, response_headers, body, str(request.url))
        request = _redirected(request, status, urljoin(str(request.url), location))
        await check_url(settings, str(request.url))
    raise EgressFailed(
        f"outbound request followed more than {settings.egress_max_redirects} redirects",
        host=request.url.host,
    )


def _redirected(request: httpx.Request, status: int, location: str) -> httpx.Request:
    """The next hop's request, as browsers and httpx build it."""
    _split(location)  # http(s) only: no file:, gopher: or schemeless hops
    method = request.method
    keep_body = status in (307, 308)
    if status == 303 or (status in (301, 302) and method == "POST"):
        method, keep_body = ("GET" if method != "HEAD" else "HEAD"), False
    headers = httpx.Headers(request.headers)
    headers.pop("Host", None)
    if httpx.URL(location).host != request.url.host:
        # Credentials meant for one host never travel to another.
        headers.pop("Authorization", None)
        headers.pop("Cookie", None)
    if not keep_body:
        headers.pop("Content-Length", None)
        headers.pop("Content-Type", None)
        headers.pop("Transfer-Encoding", None)
    return httpx.Request(
        method, location, headers=headers, content=request.content if keep_body else None
    )


async def _send(
    pool: httpcore.AsyncConnectionPool, request: httpx.Request, limit: int
) -> tuple[int, httpx.Headers, bytes]:
    core = httpcore.Request(
        method=request.method.encode(),
        url=httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        ),
        headers=request.headers.raw,
        content=request.content,
    )
    try:
        response = await pool.handle_async_request(core)
        try:
            declared = response.headers and httpx.Headers(response.headers).get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise _too_large(request, limit)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(request, limit)
                chunks.append(chunk)
        finally:
            await response.aclose()
    except httpcore.TimeoutException as exc:
        raise EgressTimeout(
            f"outbound request to {request.url.host!r} timed out", host=request.url.host
        ) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        raise EgressFailed(
            f"outbound request to {request.url.host!r} failed: {type(exc).__name__}: {exc}",
            host=request.url.host,
        ) from exc
    return response.status, httpx.Headers(response.headers), b"".join(chunks)


def _too_large(request: httpx.Request, limit: int) -> EgressTooLarge:
    return EgressTooLarge(
        f"response from {request.url.host!r} is larger than {limit} bytes",
        host=request.url.host,
        max_bytes=limit,
    )
