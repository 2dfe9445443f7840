"""A run's status: the one list of the values the runs table, the API and events use."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Stored as its string value; compares equal to it (``RunStatus.QUEUED == "queued"``)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
