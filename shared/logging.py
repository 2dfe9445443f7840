"""structlog configuration, once per process: JSON in production, readable in a terminal."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from shared.settings import Settings

SECRET_FIELDS = re.compile(r"authorization|api[_-]?key|secret|password|token$", re.IGNORECASE)
BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
KEY_LITERAL = re.compile(r"\b(ff_|sk-)[A-Za-z0-9_-]{8,}")
REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return KEY_LITERAL.sub(r"\1" + REDACTED, BEARER.sub(r"\1" + REDACTED, value))
    if isinstance(value, dict):
        return {k: REDACTED if _secret(k, v) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _secret(name: object, value: object) -> bool:
    # "token" alone is a streamed LLM token in our events, not a credential.
    return isinstance(name, str) and name != "token" and bool(SECRET_FIELDS.search(name))


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Never log keys: drop credential-named fields, mask Bearer values and key literals."""
    for name, value in list(event.items()):
        event[name] = REDACTED if _secret(name, value) else _scrub(value)
    return event


def configure_logging(settings: Settings) -> None:
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,  # after format_exc_info, so tracebacks are scrubbed too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]


def error_text(exc: BaseException, limit: int = 500) -> str:
    """An exception as a log field: its class and message, keys masked, length capped."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return str(_scrub(text))[:limit]
