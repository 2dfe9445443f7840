"""The one error hierarchy: each error carries its HTTP status and stable problem code."""

from __future__ import annotations

from typing import Any


class FlowfleetError(Exception):
    """Base of every error a client or a run can see; rendered as problem+json."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    retry_after: int | None = None  # seconds; sent as Retry-After when set

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.message = message or self.title
        self.extra = extra
        self._headers = dict(headers or {})  # e.g. RateLimit-*, WWW-Authenticate
        if retry_after is not None:
            self.retry_after = retry_after
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        sent = dict(self._headers)
        if self.retry_after is not None:
            sent.setdefault("Retry-After", str(self.retry_after))
        return sent

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://flowfleet.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.message,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class InvalidRequest(FlowfleetError):
    status, code, title = 422, "invalid_request", "Invalid request"


class PayloadTooLarge(FlowfleetError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class NotFound(FlowfleetError):
    status, code, title = 404, "not_found", "Not found"


class FlowNotFound(NotFound):
    code, title = "flow_not_found", "Flow not found"


class ScheduleNotFound(NotFound):
    code, title = "schedule_not_found", "Schedule not found"


class RunNotFound(NotFound):
    code, title = "run_not_found", "Run not found"


class FileNotFound(NotFound):
    code, title = "file_not_found", "File not found"


class KeyNotFound(NotFound):
    code, title = "key_not_found", "API key not found"


class FileTooLarge(PayloadTooLarge):
    code, title = "file_too_large", "File too large"


class UnknownScope(InvalidRequest):
    code, title = "unknown_scope", "Unknown scope"


class EmptyFile(InvalidRequest):
    code, title = "empty_file", "Empty file"


class UnsupportedFileType(FlowfleetError):
    status, code, title = 415, "unsupported_file_type", "Unsupported file type"


class FileRequired(InvalidRequest):
    """A File node has no file to read; the message says how to supply one."""

    code, title = "file_required", "The flow needs a file"


class InvalidFlow(FlowfleetError):
    status, code, title = 422, "invalid_flow", "Invalid flow"


class Conflict(FlowfleetError):
    status, code, title = 409, "conflict", "Conflict"


class RunFinished(Conflict):
    code, title = "run_finished", "Run already finished"


class RunNotFinished(Conflict):
    code, title = "run_not_finished", "Run has not finished"


class SessionBusy(Conflict):
    """A run with ``multitask: reject`` whose session has a run queued or running."""

    code, title = "session_busy", "The session has a run in progress"


class FlowIdTaken(Conflict):
    code, title = "flow_id_taken", "Another owner holds this flow id"


class FileQuotaExceeded(Conflict):
    """The key holds the most files, or file bytes, allowed."""

    code, title = "file_quota_exceeded", "The key's file quota is used up"


class IdempotencyConflict(Conflict):
    code, title = "idempotency_conflict", "Idempotency key reused with a different request"


class Unauthorized(FlowfleetError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(FlowfleetError):
    status, code, title = 403, "forbidden", "Forbidden"


class RateLimited(FlowfleetError):
    status, code, title = 429, "rate_limited", "Too many requests"


class BackendUnavailable(FlowfleetError):
    """The database or Redis cannot be reached; the request changed nothing."""

    status, code, title = 503, "backend_unavailable", "Service temporarily unavailable"
    retry_after = 2


class InsufficientScope(Forbidden):
    code, title = "insufficient_scope", "The key lacks the scope this needs"


class QueueFull(FlowfleetError):
    status, code, title = 503, "queue_full", "Too many queued runs"
    retry_after = 5


class KeyQueueFull(RateLimited):
    """This key's share of the queue is used up; other keys still submit."""

    code, title = "key_queue_full", "This key has too many queued runs"
    retry_after = 5


class UnsupportedMediaType(FlowfleetError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class InvalidHost(FlowfleetError):
    status, code, title = 400, "invalid_host", "Host not allowed"


# Run failures (stored on the run as error {code, message}; never raised to a client).
class RunFailure(FlowfleetError):
    code, title = "run_failed", "Run failed"


class BackendError(RunFailure):
    code, title = "backend_error", "LLM backend error"


class FlowError(RunFailure):
    code, title = "flow_error", "Flow failed"


class RunTimeout(RunFailure):
    code, title = "timeout", "Run exceeded its deadline"


class ExhaustedRetries(RunFailure):
    code, title = "exhausted_retries", "Run was delivered too many times without finishing"


class CircuitOpen(BackendError):
    """The backend failed repeatedly just now; fail fast instead of calling it."""


class FileParseFailed(RunFailure):
    """A file a run reads could not be parsed (or is over a parsing limit); names the file."""

    code, title = "file_parse_failed", "A file could not be parsed"


class FileUnavailable(RunFailure):
    """A file a run names is not (or no longer) its owner's."""

    code, title = "file_not_found", "File not found"
