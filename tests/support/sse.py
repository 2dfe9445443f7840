"""A minimal Server-Sent Events reader over httpx, for tests and benchmarks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SseEvent:
    """One event as the client saw it, with the time it arrived."""

    event: str
    data: Any
    id: str | None = None
    received: float = field(default_factory=time.time)


def iter_sse(response: httpx.Response) -> Iterator[SseEvent]:
    """Events of an open streaming response; comment lines (heartbeats) are skipped."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in fields:
                raw = fields["data"]
                data = raw if raw == "[DONE]" else json.loads(raw)
                yield SseEvent(fields.get("event", "message"), data, fields.get("id"))
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        fields[name] = fields[name] + "\n" + value if name in fields else value


def read_events(
    client: httpx.Client,
    run_id: str,
    *,
    last_event_id: str | None = None,
    stop_after: int | None = None,
) -> list[SseEvent]:
    """The run's events until done (or until ``stop_after`` events, then disconnect)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    out: list[SseEvent] = []
    with client.stream("GET", f"/v1/runs/{run_id}/events", headers=headers) as response:
        assert response.status_code == 200, response.read()
        for event in iter_sse(response):
            out.append(event)
            if event.event == "done" or (stop_after is not None and len(out) >= stop_after):
                break
    return out
