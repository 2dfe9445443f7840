"""Webhook contract: which URLs are accepted, and how a delivery is signed.

A delivery is ``POST <url>`` with the run's JSON (the body of ``GET /v1/runs/{id}``) and

    X-Flowfleet-Timestamp: <unix seconds>
    X-Flowfleet-Signature: sha256=<hex HMAC-SHA256(webhook_secret, f"{timestamp}.{body}")>

where ``body`` is the exact bytes sent. Receivers recompute the HMAC over the
timestamp header, a dot and the raw body, compare in constant time, and reject old
timestamps to stop replays.

Where a webhook may point is the egress policy's business (shared/egress.py): at submit a
URL naming a refused address literally (``http://10.0.0.1/``) is a 422 at once; at delivery
the host is resolved and every address checked, and the connection goes to the checked
address. ``webhook_allowed_hosts``, when set, narrows the hosts further by name.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

from shared.egress import egress_policy
from shared.errors import InvalidRequest
from shared.settings import Settings

SIGNATURE_HEADER = "X-Flowfleet-Signature"
TIMESTAMP_HEADER = "X-Flowfleet-Timestamp"


def validate_url(settings: Settings, url: str) -> str:
    """The URL if it is http(s) to an allowed host; InvalidRequest (422) otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("webhook must be an http or https URL with a host", field="webhook")
    host = parts.hostname.lower()
    allowed = settings.webhook_allowed_hosts
    if allowed and not any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in allowed):
        raise InvalidRequest(
            f"webhook host {host!r} is not allowed; allowed hosts: {', '.join(allowed)}"
            " (setting FLOWFLEET_WEBHOOK_ALLOWED_HOSTS)",
            field="webhook",
        )
    _refuse_literal_address(settings, host)
    return url


def _refuse_literal_address(settings: Settings, host: str) -> None:
    """A 422 now for a URL that names a refused address; names are resolved at delivery."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            ip = ipaddress.ip_address("127.0.0.1")
        else:
            return
    policy = egress_policy(settings)
    if not (policy.host_allowed(host) or policy.address_allowed(ip)):
        raise InvalidRequest(
            f"webhook host {host!r} is an internal address the egress policy refuses "
            "(FLOWFLEET_EGRESS_ALLOWED_HOSTS / FLOWFLEET_EGRESS_ALLOWED_CIDRS admit it)",
            field="webhook",
        )


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Flowfleet-Signature`` value for this timestamp and body."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the right signature (constant-time compare)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)
