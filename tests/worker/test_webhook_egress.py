"""Webhooks cannot reach internal addresses in production, store only coarse outcomes, and
production refuses to start with the default or an empty webhook secret."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from shared.errors import InvalidRequest
from shared.settings import REPO_ROOT, Settings
from shared.webhooks import validate_url
from worker.webhooks import REFUSED, UNREACHABLE, _attempt, post

SECRET = "a-production-secret"


def _production(**kw: Any) -> Settings:
    return Settings(env="production", webhook_secret=SECRET, **kw)


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[str]]]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], hits
    httpd.shutdown()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://localhost:5432/",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/",
    ],
)
def test_submit_refuses_webhooks_to_internal_addresses_in_production(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_url(_production(), url)
    assert caught.value.extra["field"] == "webhook"


def test_public_webhook_hosts_pass_submit_with_the_empty_default_allowlist() -> None:
    assert _production().webhook_allowed_hosts == []
    assert (
        validate_url(_production(), "https://hooks.example.com/x") == "https://hooks.example.com/x"
    )


async def test_delivery_to_a_name_resolving_to_loopback_is_refused_and_not_sent(
    receiver: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name passes the submit check (it is not an address); delivery resolves it, finds
    # 127.0.0.1 and refuses: the local service never sees the request.
    port, hits = receiver
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **kw: real("127.0.0.1" if host == "hooks.example" else host, *a, **kw),
    )
    ctx: Any = SimpleNamespace(settings=_production())
    url = f"http://hooks.example:{port}/hook"
    validate_url(ctx.settings, url)
    assert await post(ctx, url, b"{}") == (None, REFUSED)
    assert await post(ctx, "http://10.0.0.5:80/hook", b"{}") == (None, REFUSED)
    assert hits == []


async def test_an_allow_listed_receiver_gets_the_delivery(receiver: tuple[int, list[str]]) -> None:
    port, hits = receiver
    ctx: Any = SimpleNamespace(settings=_production(egress_allowed_cidrs=["127.0.0.1/32"]))
    assert await post(ctx, f"http://127.0.0.1:{port}/hook", b"{}") == (200, "delivered")
    assert hits == ["/hook"]


async def test_attempts_store_coarse_outcomes_not_error_text() -> None:
    # A closed port and a refused connection look the same on the run: "unreachable".
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    ctx: Any = SimpleNamespace(settings=_production(egress_allowed_cidrs=["127.0.0.0/8"]))
    status, outcome = await post(ctx, f"http://127.0.0.1:{closed}/", b"{}")
    assert (status, outcome) == (None, UNREACHABLE)
    assert set(_attempt(status, outcome)) == {"at", "outcome", "status_code"}


@pytest.mark.parametrize("secret", [None, "change-me", "", "  ", "REPLACE-ME-openssl-rand-hex-32"])
def test_production_refuses_the_default_or_an_empty_webhook_secret(secret: str | None) -> None:
    kw = {} if secret is None else {"webhook_secret": secret}
    with pytest.raises(ValidationError, match="FLOWFLEET_WEBHOOK_SECRET"):
        Settings(env="production", _env_file=None, **kw)  # type: ignore[call-arg]


def test_the_shipped_deploy_files_carry_no_usable_secret() -> None:
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    assert "${FLOWFLEET_WEBHOOK_SECRET:?" in compose  # compose refuses to start without one
    k8s = (REPO_ROOT / "deploy" / "k8s" / "secret.yaml").read_text()
    placeholder = k8s.split("FLOWFLEET_WEBHOOK_SECRET:", 1)[1].split()[0]
    with pytest.raises(ValidationError):
        Settings(env="production", webhook_secret=placeholder, _env_file=None)  # type: ignore[call-arg]


def test_a_production_worker_with_the_default_secret_does_not_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFLEET_")}
    env.update({"FLOWFLEET_ENV": "production", "PYTHONPATH": str(REPO_ROOT)})
    done = subprocess.run(
        [sys.executable, "-m", "flowfleet", "worker"],
        env=env,
        cwd=tmp_path,  # no .env file from the checkout
        capture_output=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert b"FLOWFLEET_WEBHOOK_SECRET" in done.stdout + done.stderr
