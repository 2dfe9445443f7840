"""Worker metrics: LLM calls (a LangChain callback), runs, the compiled-flow cache, /metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import openai
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.outputs import LLMResult
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from flows.runtime import FlowCache
from shared.errors import BackendError, CircuitOpen
from shared.logging import get_logger
from shared.metrics import (
    FLOW_CACHE_METRIC,
    LLM_ERRORS,
    LLM_LATENCY,
    LLM_TOKENS,
    RUN_DURATION,
    RUN_QUEUE_WAIT,
    RUNS_FINISHED,
    RUNS_IN_FLIGHT,
)
from shared.settings import Settings

log = get_logger("worker.metrics")


class LLMMetrics(AsyncCallbackHandler):
    """Latency, tokens and errors of every chat-model call, by backend and model."""

    run_inline = True  # awaited in turn, no task per event (see worker/streaming.py)

    def __init__(self) -> None:
        self._calls: dict[UUID, tuple[float, str, str]] = {}

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        backend, model = call_labels(metadata, kwargs.get("invocation_params"))
        self._calls[run_id] = (time.perf_counter(), backend, model)

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._calls.pop(run_id, None)
        if call is None:
            return
        started, backend, model = call
        LLM_LATENCY.labels(backend, model).observe(time.perf_counter() - started)
        tokens_in, tokens_out = token_counts(response)
        LLM_TOKENS.labels(backend, model, "input").inc(tokens_in)
        LLM_TOKENS.labels(backend, model, "output").inc(tokens_out)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._calls.pop(run_id, None)
        if call is None:
            return
        _, backend, model = call
        LLM_ERRORS.labels(backend, model, error_kind(error)).inc()


def call_labels(metadata: dict[str, Any] | None, params: dict[str, Any] | None) -> tuple[str, str]:
    """(backend, model) of a chat-model call: the routed backend's name, never its address."""
    meta = metadata or {}
    params = params or {}
    backend = str(meta.get("flowfleet_backend") or meta.get("ls_provider") or "unknown")
    model = str(params.get("model") or params.get("model_name") or meta.get("ls_model_name"))
    return backend, model


def token_counts(response: LLMResult) -> tuple[int, int]:
    """(input, output) tokens of one model call, as the backend reported them."""
    # Streaming calls carry usage on the message; non-streaming ones in llm_output too.
    tokens_in = tokens_out = 0
    for generations in response.generations:
        for generation in generations:
            usage = getattr(getattr(generation, "message", None), "usage_metadata", None) or {}
            tokens_in += int(usage.get("input_tokens", 0) or 0)
            tokens_out += int(usage.get("output_tokens", 0) or 0)
    if not (tokens_in or tokens_out) and response.llm_output:
        usage = response.llm_output.get("token_usage") or {}
        tokens_in = int(usage.get("prompt_tokens", 0) or 0)
        tokens_out = int(usage.get("completion_tokens", 0) or 0)
    return tokens_in, tokens_out


def error_kind(error: BaseException) -> str:
    """A small, bounded label for an LLM failure."""
    if isinstance(error, CircuitOpen):
        return "circuit_open"
    if isinstance(error, BackendError) and error.__cause__ is not None:
        error = error.__cause__  # retries spent (flows/retry.py): label what the backend did
    if isinstance(error, openai.APIStatusError):
        return f"http_{error.status_code}"
    if isinstance(error, openai.APITimeoutError | TimeoutError):
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection"
    return "other"


def run_started(flow: str, created_at: datetime | None, started_at: datetime | None) -> None:
    """A run was claimed: its time in the queue, and one more in flight."""
    RUNS_IN_FLIGHT.inc()
    if created_at is not None and started_at is not None:
        wait = (_aware(started_at) - _aware(created_at)).total_seconds()
        RUN_QUEUE_WAIT.labels(flow).observe(max(wait, 0.0))


def run_finished(flow: str, status: str, duration_s: float) -> None:
    """A run this worker claimed came to an end (or lost its lease: status ``lease_lost``)."""
    RUNS_IN_FLIGHT.dec()
    RUNS_FINISHED.labels(flow, status).inc()
    RUN_DURATION.labels(flow, status).observe(duration_s)


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes; every timestamp flowfleet writes is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class FlowCacheCollector(Collector):
    """The compiled-flow cache's hits and compiles, read from the process's FlowCache."""

    def __init__(self, cache: FlowCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            FLOW_CACHE_METRIC,
            "Compiled-flow cache look-ups in this worker, by result (hit, compile).",
            labels=["result"],
        )
        family.add_metric(["hit"], self.cache.hits)
        family.add_metric(["compile"], self.cache.compiles)
        yield family


def serve_metrics(settings: Settings, cache: FlowCache) -> int | None:
    """Serve this worker's /metrics on ``worker_metrics_port``; None when disabled or taken."""
    REGISTRY.register(FlowCacheCollector(cache))
    port = settings.worker_metrics_port
    if not port:
        return None
    try:
        start_http_server(port)
    except OSError as exc:
        # A second worker on the same host and port: run without metrics rather than die.
        log.warning("worker.metrics_port_taken", port=port, error=str(exc))
        return None
    log.info("worker.metrics", port=port)
    return port
