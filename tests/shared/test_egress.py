"""The egress policy: a fetch cannot reach loopback, private or metadata addresses (directly,
by a name that resolves there, by DNS rebinding, or by a redirect); an allow-listed local
server is reachable; responses are capped in size and time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.egress import (
    EgressDenied,
    EgressTimeout,
    EgressTooLarge,
    check_url,
    egress_policy,
    fetch,
)
from shared.settings import Settings


class _Server:
    """A local HTTP server that records every request it receives."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.paths.append(self.path)
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == "/slow":
                    time.sleep(3)
                body = b"x" * 5000 if self.path == "/big" else b"hello from " + self.path.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                owner.paths.append(f"POST {self.path} {self.rfile.read(length).decode()}")
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server()
    yield srv
    srv.httpd.shutdown()


def _settings(**kw: Any) -> Settings:
    return Settings(env="embedded", **kw)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/secret",
        "http://localhost:{port}/secret",
        "http://[::1]:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://0.0.0.0:{port}/secret",
        "http://10.0.0.1/secret",
        "http://10.255.1.2:8080/secret",
        "http://172.16.0.1/secret",
        "http://192.168.1.1/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.64.0.1/secret",
        "http://224.0.0.1/secret",
    ],
)
async def test_fetch_refuses_internal_addresses(server: _Server, url: str) -> None:
    before = len(server.paths)
    with pytest.raises(EgressDenied) as caught:
        await fetch(_settings(), "GET", url.format(port=server.port), timeout_s=2)
    assert "refused" in caught.value.message
    assert len(server.paths) == before  # nothing reached the local server


async def test_denial_names_host_and_address(server: _Server) -> None:
    with pytest.raises(EgressDenied) as caught:
        await check_url(_settings(), f"http://localhost:{server.port}/")
    assert "'localhost'" in caught.value.message
    assert "loopback" in caught.value.message
    assert caught.value.extra["address"] in ("127.0.0.1", "::1")


async def test_allow_listed_local_server_is_reachable(server: _Server) -> None:
    by_host = _settings(egress_allowed_hosts=["127.0.0.1"])
    response = await fetch(by_host, "GET", f"http://127.0.0.1:{server.port}/ok", params={"a": 1})
    assert response.status_code == 200
    assert response.text() == "hello from /ok?a=1"
    by_cidr = _settings(egress_allowed_cidrs=["127.0.0.0/8"])
    response = await fetch(by_cidr, "POST", f"http://127.0.0.1:{server.port}/in", json={"k": 1})
    assert response.status_code == 204
    assert server.paths[-1] == 'POST /in {"k":1}'


async def test_a_range_never_opens_the_metadata_address() -> None:
    policy = egress_policy(_settings(egress_allowed_cidrs=["169.254.0.0/16", "fd00::/8"]))
    with pytest.raises(EgressDenied):
        await policy.resolve("169.254.169.254", 80)
    with pytest.raises(EgressDenied):
        await policy.resolve("fd00:ec2::254", 80)
    assert await policy.resolve("169.254.1.1", 80)  # the rest of the range is open
    exact = egress_policy(_settings(egress_allowed_cidrs=["169.254.169.254/32"]))
    assert await exact.resolve("169.254.169.254", 80)


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://10.0.0.1/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:{port}/secret",
    ],
)
async def test_redirect_to_internal_address_is_refused(server: _Server, target: str) -> None:
    # The first hop is admitted by name ("localhost" only); the hop it redirects to is not.
    settings = _settings(egress_allowed_hosts=["localhost"])
    location = target.format(port=server.port).replace("localhost", "127.0.0.1")
    before = len(server.paths)
    with pytest.raises(EgressDenied):
        await fetch(settings, "GET", f"http://localhost:{server.port}/redirect?to={location}")
    assert server.paths[before:] == [f"/redirect?to={location}"]  # the secret was never asked


async def test_redirect_within_the_allow_list_is_followed(server: _Server) -> None:
    settings = _settings(egress_allowed_hosts=["localhost", "127.0.0.1"])
    location = f"http://127.0.0.1:{server.port}/landed"
    response = await fetch(
        settings, "GET", f"http://localhost:{server.port}/redirect?to={location}"
    )
    assert (response.status_code, response.url) == (200, location)


async def test_dns_rebinding_is_checked_at_connect(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # First answer public (passes the up-front check), later answers loopback: the connection
    # is checked again where it is opened, so it never reaches the local server.
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host == "rebind.example":
            return real(next(answers), port, *args, **kw)
        return real(host, port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    before = len(server.paths)
    with pytest.raises(EgressDenied) as caught:
        await fetch(_settings(), "GET", f"http://rebind.example:{server.port}/secret", timeout_s=3)
    assert caught.value.extra["address"] == "127.0.0.1"
    assert len(server.paths) == before


async def test_response_size_is_capped(server: _Server) -> None:
    settings = _settings(egress_allowed_hosts=["127.0.0.1"])
    with pytest.raises(EgressTooLarge):
        await fetch(settings, "GET", f"http://127.0.0.1:{server.port}/big", max_bytes=1000)
    small = _settings(egress_allowed_hosts=["127.0.0.1"], egress_max_bytes=1000)
    with pytest.raises(EgressTooLarge):  # a caller cannot raise the operator's cap
        await fetch(small, "GET", f"http://127.0.0.1:{server.port}/big", max_bytes=10**9)


async def test_response_time_is_capped(server: _Server) -> None:
    settings = _settings(egress_allowed_hosts=["127.0.0.1"])
    started = time.monotonic()
    with pytest.raises(EgressTimeout):
        await fetch(settings, "GET", f"http://127.0.0.1:{server.port}/slow", timeout_s=0.5)
    assert time.monotonic() - started < 2.5


async def test_only_http_and_https() -> None:
    for url in ("file:///etc/passwd", "gopher://127.0.0.1/", "http:///nohost"):
        with pytest.raises(EgressDenied):
            await check_url(_settings(), url)
