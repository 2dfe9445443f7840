"""Retry policy and circuit breaker for LLM backend calls.

Retry: 429, 5xx, 408, connection errors and timeouts are retried with exponential
backoff and full jitter, waiting at least what the backend's ``Retry-After`` asks,
never past the run's deadline. A streamed call is retried only while it has produced
no token, so the run's event stream never carries a token twice.

Circuit breaker: per backend and per worker process, not in Redis. It sits on the path
of every model call, so a fleet-wide breaker would add a Redis round trip to each call
and make LLM calls fail when Redis does; a worker process keeps hundreds of calls in
flight, so it sees a dead backend within a few calls on its own.
"""

from __future__ import annotations

import email.utils
import random
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx
import openai

from shared.errors import BackendError, CircuitOpen
from shared.settings import Settings, get_settings

# Monotonic time by which the current run must end; set by the worker around a run.
run_deadline: ContextVar[float | None] = ContextVar("flowfleet_run_deadline", default=None)

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def _causes(exc: BaseException) -> list[BaseException]:
    # LangChain integrations wrap the SDK's error (langchain-google-genai raises its own
    # type ``from`` google-genai's): look through the chain, a few links at most.
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 4:
        chain.append(current)
        current = current.__cause__
    return chain


def backend_status(exc: BaseException) -> int | None:
    """The HTTP status a backend answered, when it answered at all (any of the SDKs)."""
    for link in _causes(exc):
        if isinstance(link, openai.APIStatusError):
            return link.status_code
        if isinstance(link, httpx.HTTPStatusError):
            return link.response.status_code
        # anthropic.APIStatusError (status_code), google.genai.errors.APIError (code)
        for attr in ("status_code", "code"):
            value = getattr(link, attr, None)
            if isinstance(value, int) and 100 <= value < 600 and hasattr(link, "response"):
                return value
    return None


_TRANSPORT = (openai.APIConnectionError, httpx.TransportError, TimeoutError, ConnectionError)


def _is_transport(exc: BaseException) -> bool:
    # By class name too, so the Anthropic SDK's APIConnectionError (and httpx2's
    # TransportError) count without importing those SDKs here.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, _TRANSPORT) or bool(names & {"APIConnectionError", "TransportError"})


def is_retryable(exc: BaseException) -> bool:
    """Transient: throttled, server error, unreachable or too slow."""
    status = backend_status(exc)
    if status is not None:
        return status in RETRY_STATUSES or status >= 500
    return any(_is_transport(link) for link in _causes(exc))


def is_timeout(exc: BaseException) -> bool:
    """The call ran out of time (any SDK's timeout error, or one it wraps)."""
    return any(
        isinstance(link, TimeoutError | openai.APITimeoutError | httpx.TimeoutException)
        or "timeout" in type(link).__name__.lower()
        for link in _causes(exc)
    )


def retry_after_s(exc: BaseException, now: float | None = None) -> float | None:
    """Seconds the backend asked to wait: ``retry-after-ms``, or ``Retry-After`` (s or date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (now if now is not None else time.time()))


@dataclass
class RetryPolicy:
    """How often and how long to retry one model call."""

    retries: int = 4
    base_s: float = 0.5
    max_s: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.backend_retries,
            settings.backend_backoff_base_s,
            settings.backend_backoff_max_s,
        )

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Full jitter on base·2^attempt, but never less than the backend's Retry-After."""
        backoff = random.uniform(0, min(self.max_s, self.base_s * 2**attempt))
        asked = retry_after_s(exc)
        return backoff if asked is None else max(asked, backoff * 0.1 + asked)

    def next_delay(self, attempt: int, exc: BaseException) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to give up now."""
        if attempt >= self.retries or not is_retryable(exc):
            return None
        wait = self.delay(attempt, exc)
        deadline = run_deadline.get()
        if deadline is not None and time.monotonic() + wait >= deadline:
            return None  # the wait alone would miss the deadline
        return wait


@dataclass
class CircuitBreaker:
    """Closed; open after ``failures`` transient failures in a row; one probe after ``reset_s``."""

    name: str
    failures: int = 10
    reset_s: float = 15.0
    _consecutive: int = 0
    _opened_at: float | None = None
    _probing: bool = False
    _last: str = ""
    _clock: object = field(default=time.monotonic, repr=False)

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._now() - self._opened_at >= self.reset_s else "open"

    def _now(self) -> float:
        return self._clock()  # type: ignore[operator,no-any-return]

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` instead of calling a backend that is down."""
        state = self.state
        if state == "closed":
            return
        if state == "half-open" and not self._probing:
            self._probing = True  # exactly one call finds out whether it is back
            return
        wait = max(0.0, self.reset_s - (self._now() - (self._opened_at or 0)))
        raise CircuitOpen(
            f"backend {self.name!r} failed {self._consecutive} calls in a row{self._last}; "
            f"not calling it for another {wait:.0f} s",
            backend=self.name,
        )

    def release_probe(self) -> None:
        """An outcome that says nothing of the backend's health: a half-open probe may go again."""
        self._probing = False

    def record(self, exc: BaseException | None) -> None:
        """Count one call's outcome; only transient failures trip the breaker."""
        if exc is None or not is_retryable(exc):
            self._consecutive, self._opened_at, self._probing = 0, None, False
            return
        self._consecutive += 1
        status = backend_status(exc)
        self._last = f" (last: HTTP {status})" if status else f" (last: {type(exc).__name__})"
        if self._probing or self._consecutive >= self.failures:
            self._opened_at, self._probing = self._now(), False


_breakers: dict[str, CircuitBreaker] = {}


def breaker_for(name: str, settings: Settings | None = None) -> CircuitBreaker:
    """The process's breaker for a backend."""
    found = _breakers.get(name)
    if found is None:
        settings = settings or get_settings()
        found = CircuitBreaker(name, settings.breaker_failures, settings.breaker_reset_s)
        _breakers[name] = found
    return found


def give_up(exc: BaseException, attempts: int) -> BaseException:
    """The error a run fails with once retries are spent: ``backend_error`` with the status."""
    if not is_retryable(exc) or isinstance(exc, BackendError):
        return exc
    status = backend_status(exc)
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    if status is not None:
        message = getattr(exc, "message", None) or str(exc)
        return BackendError(
            f"the LLM backend answered HTTP {status}{tries}: {message[:200]}",
            backend_status=status,
        )
    if is_timeout(exc):
        return BackendError(f"the LLM backend did not answer in time{tries}")
    return BackendError(f"the LLM backend could not be reached{tries}")
