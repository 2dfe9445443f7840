"""Render nginx/nginx.conf.template: the Docker configuration and the local one, from one file."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from shared.settings import REPO_ROOT, Settings

TEMPLATE = REPO_ROOT / "nginx" / "nginx.conf.template"
COMPOSE_CONF = REPO_ROOT / "nginx" / "nginx.conf"
RATE_PER_S = 200
BURST = 400
COMPOSE_API_PORT = 8000  # the api service's port inside the compose network


def nginx_binary() -> str | None:
    """nginx from PATH, or Debian's place for it when /usr/sbin is not on PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    return next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )


def render(
    settings: Settings,
    *,
    listen: str,
    upstream: list[str],
    runtime_dir: str,
    resolver: str = "",
) -> str:
    """The full nginx.conf for ``upstream`` server lines, listening on ``listen``."""
    values = {
        "LISTEN": listen,
        "UPSTREAM": "\n        ".join(f"{line};" for line in upstream),
        "RUNTIME": runtime_dir,
        "RESOLVER": resolver,
        "MAX_BODY_BYTES": str(settings.max_body_bytes),
        "MAX_FILE_BODY_BYTES": str(settings.max_file_body_bytes),
        "RATE": str(RATE_PER_S),
        "BURST": str(BURST),
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"unrendered placeholders in the nginx template: {leftover}")
    return text


def render_compose(settings: Settings) -> str:
    """Compose: Docker's DNS is re-read every 10 s, so `--scale api=N` replicas join."""
    return render(
        settings,
        listen="8080",
        # `resolve` (nginx >= 1.27.3) re-resolves the service name into one peer per replica.
        upstream=[
            "zone flowfleet_api 256k",
            f"server api:{COMPOSE_API_PORT} resolve max_fails=1 fail_timeout=5s",
        ],
        runtime_dir="/tmp",
        resolver="resolver 127.0.0.11 valid=10s ipv6=off;",
    )


def render_local(
    settings: Settings, *, listen_port: int, api_ports: list[int], runtime: Path
) -> str:
    """`flowfleet up --nginx`: fixed local ports instead of a DNS name."""
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (runtime / sub).mkdir(parents=True, exist_ok=True)
    return render(
        settings,
        listen=f"127.0.0.1:{listen_port}",
        upstream=[f"server 127.0.0.1:{p} max_fails=1 fail_timeout=5s" for p in api_ports],
        runtime_dir=str(runtime),
    )
