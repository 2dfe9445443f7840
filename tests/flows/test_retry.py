"""Backend retry policy and circuit breaker, as plain functions."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from flows.retry import (
    CircuitBreaker,
    RetryPolicy,
    give_up,
    is_retryable,
    retry_after_s,
    run_deadline,
)
from shared.errors import BackendError, CircuitOpen


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://backend/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    return openai.APIStatusError("boom", response=response, body=None)


def test_transient_failures_are_retryable_and_client_errors_are_not() -> None:
    request = httpx.Request("POST", "http://backend")
    assert is_retryable(status_error(429))
    assert is_retryable(status_error(500))
    assert is_retryable(status_error(503))
    assert is_retryable(openai.APIConnectionError(request=request))
    assert is_retryable(openai.APITimeoutError(request=request))
    assert not is_retryable(status_error(400))
    assert not is_retryable(status_error(401))
    assert not is_retryable(ValueError("bad prompt"))


def test_retry_after_is_read_in_seconds_milliseconds_and_http_date() -> None:
    assert retry_after_s(status_error(429, {"Retry-After": "3"})) == 3.0
    assert retry_after_s(status_error(429, {"retry-after-ms": "250"})) == 0.25
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after_s(status_error(429, {"Retry-After": date}), now=1445412470.0) == 10.0
    assert retry_after_s(status_error(500)) is None


def test_backoff_grows_with_jitter_honours_retry_after_and_stops_at_budget() -> None:
    policy = RetryPolicy(retries=3, base_s=1.0, max_s=8.0)
    err = status_error(500)
    waits = [policy.next_delay(attempt, err) for attempt in range(4)]
    assert all(w is not None and 0 <= w <= min(8.0, 2**i) for i, w in enumerate(waits[:3]))
    assert waits[3] is None  # budget spent
    assert policy.next_delay(0, status_error(400)) is None  # never retried
    asked = policy.next_delay(0, status_error(429, {"Retry-After": "5"}))
    assert asked is not None
    assert asked >= 5


def test_no_retry_when_the_wait_would_pass_the_run_deadline() -> None:
    token = run_deadline.set(time.monotonic() + 1.0)
    try:
        assert RetryPolicy().next_delay(0, status_error(429, {"Retry-After": "5"})) is None
    finally:
        run_deadline.reset(token)


def test_given_up_error_is_backend_error_with_status_and_attempts() -> None:
    failure = give_up(status_error(503), attempts=5)
    assert isinstance(failure, BackendError)
    assert failure.code == "backend_error"
    assert failure.extra["backend_status"] == 503
    assert "HTTP 503 after 5 attempts" in failure.message


def test_breaker_opens_after_consecutive_failures_fails_fast_then_probes_once() -> None:
    now = [0.0]
    breaker = CircuitBreaker("sim", failures=3, reset_s=10, _clock=lambda: now[0])
    for _ in range(3):
        breaker.before_call()
        breaker.record(status_error(500))
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as raised:
        breaker.before_call()
    assert raised.value.code == "backend_error"

    now[0] = 11.0
    breaker.before_call()  # the one probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # others still fail fast while it is out
    breaker.record(None)
    assert breaker.state == "closed"
    breaker.before_call()


def test_breaker_ignores_client_errors_and_reopens_on_failed_probe() -> None:
    now = [0.0]
    breaker = CircuitBreaker("sim", failures=2, reset_s=5, _clock=lambda: now[0])
    for _ in range(5):
        breaker.record(status_error(400))
    assert breaker.state == "closed"
    breaker.record(status_error(500))
    breaker.record(status_error(500))
    now[0] = 6.0
    breaker.before_call()
    breaker.record(status_error(500))
    assert breaker.state == "open"
