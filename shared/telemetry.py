"""Request ids and optional OpenTelemetry tracing, carried from the API into the worker.

The request id travels in the Celery task headers next to the W3C trace context,
so a run's worker logs carry the request id of the call that submitted it.
Tracing is optional (``pip install '.[otel]'`` and ``FLOWFLEET_OTEL_ENABLED=true``);
without it every function here is a cheap no-op and OpenTelemetry is never imported.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import structlog

from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("telemetry")
_tracer: Any = None


def served_by() -> str:
    """host:pid of this process (its pid is read now: uvicorn may fork after import)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def init_tracing(settings: Settings, component: str) -> bool:
    """Install an OTLP-exporting tracer provider when tracing is enabled; False otherwise."""
    global _tracer
    if not settings.otel_enabled or _tracer is not None:
        return _tracer is not None
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("otel.unavailable", detail="pip install 'flowfleet[otel]' to enable tracing")
        return False
    resource = Resource.create(
        {"service.name": settings.otel_service_name, "flowfleet.component": component}
    )
    provider = TracerProvider(resource=resource)
    # Endpoint and headers come from the standard OTEL_EXPORTER_OTLP_* variables.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("flowfleet")
    return True


@contextmanager
def span(name: str, carrier: Mapping[str, Any] | None = None, **attributes: Any) -> Iterator[None]:
    """A span continuing the trace in ``carrier`` (incoming headers); a no-op when off."""
    if _tracer is None:
        yield
        return
    from opentelemetry.propagate import extract

    context = extract(dict(carrier)) if carrier is not None else None
    with _tracer.start_as_current_span(name, context=context, attributes=attributes):
        yield


def propagation_headers() -> dict[str, str]:
    """Headers for a Celery task: the bound request id, and the trace context when tracing."""
    headers: dict[str, str] = {}
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        headers["request_id"] = str(request_id)
    if _tracer is not None:
        from opentelemetry.propagate import inject

        inject(headers)
    return headers
