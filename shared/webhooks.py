"""Webhook contract: which URLs are accepted, and how a delivery is signed.

A delivery is ``POST <url>`` with the run's JSON (the body of ``GET /v1/runs/{id}``) and

    X-Flowfleet-Timestamp: <unix seconds>
    X-Flowfleet-Signature: sha256=<hex HMAC-SHA256(webhook_secret, f"{timestamp}.{body}")>

where ``body`` is the exact bytes sent. Receivers recompute the HMAC over the
timestamp header, a dot and the raw body, compare in constant time, and reject old
timestamps to stop replays.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
from urllib.parse import urlsplit

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
    if not any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in allowed):
        raise InvalidRequest(
            f"webhook host {host!r} is not allowed; allowed hosts: {', '.join(allowed) or 'none'}"
            " (setting FLOWFLEET_WEBHOOK_ALLOWED_HOSTS)",
            field="webhook",
        )
    return url


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Flowfleet-Signature`` value for this timestamp and body."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the right signature (constant-time compare)."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)
