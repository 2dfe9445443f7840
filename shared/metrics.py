"""Prometheus metric definitions, one place for every process (names carry their unit)."""

from __future__ import annotations

from prometheus_client import Counter

# Caches
CACHE_REQUESTS = Counter(
    "flowfleet_cache_requests_total", "Response cache look-ups, by result (hit, miss).", ["result"]
)
