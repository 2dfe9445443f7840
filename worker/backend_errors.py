"""Turn what an LLM call raised into a run failure with a stable code and a safe message."""

from __future__ import annotations

import openai

from shared.errors import BackendError, FlowError, RunFailure


def as_run_failure(exc: BaseException) -> RunFailure:
    """A code and message for the run record; never the request, the key or a traceback."""
    if isinstance(exc, RunFailure):
        return exc
    if isinstance(exc, openai.APIStatusError):
        return BackendError(
            f"the LLM backend answered HTTP {exc.status_code}: {_short(exc.message)}",
            backend_status=exc.status_code,
        )
    if isinstance(exc, openai.APITimeoutError):
        return BackendError("the LLM backend did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return BackendError("the LLM backend could not be reached")
    return FlowError(f"{type(exc).__name__}: {_short(str(exc))}")


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
