"""Request and response bodies of the HTTP API (pydantic)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.run_status import RunStatus

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"

# A NUL byte or a lone UTF-16 surrogate cannot be stored (PostgreSQL text refuses NUL, and a
# surrogate cannot be encoded as UTF-8): refused where a client sends it, naming where it is,
# so one client's bad string never reaches a write it shares with other clients' runs.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_at(value: Any, path: str) -> str | None:
    """The path of the first string (key or value) in ``value`` that cannot be stored."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:  # iterative: a deeply nested value cannot exhaust the recursion limit
        item, where = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return where
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return f"{where}.{_UNSTORABLE.sub('?', key)} (the key)"
                stack.append((inner, f"{where}.{key}"))
        elif isinstance(item, list | tuple):
            stack.extend((inner, f"{where}[{i}]") for i, inner in enumerate(item))
    return None


def refuse_unstorable(value: Any, path: str) -> None:
    """Raise ValueError naming the field when ``value`` holds a NUL or a lone surrogate."""
    where = unstorable_at(value, path)
    if where is not None:
        raise ValueError(
            f"{where} contains a NUL character or a lone UTF-16 surrogate, which cannot be "
            "stored; remove it or send valid UTF-8 text"
        )


class Multitask(StrEnum):
    """What a run does when its session already has an unfinished run (docs/reliability.md)."""

    ENQUEUE = "enqueue"  # wait its turn: the session's runs execute one at a time, in order
    REJECT = "reject"  # refuse it (409 session_busy)
    INTERRUPT = "interrupt"  # cancel the session's unfinished runs, then run


class RunCreate(BaseModel):
    """Submit a run of a flow."""

    model_config = ConfigDict(extra="forbid")

    input: str | None = Field(default=None, description="The text the flow's input node receives.")
    session_id: str | None = Field(
        default=None,
        pattern=SESSION_ID_PATTERN,
        description="Conversation id: earlier turns become chat history.",
    )
    tweaks: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-component field overrides, LangFlow style."
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Stored with the run.")
    webhook: str | None = Field(
        default=None, max_length=2048, description="URL that receives the finished run."
    )
    multitask: Multitask = Field(
        default=Multitask.ENQUEUE,
        description="With a session_id whose earlier run is unfinished: enqueue (wait for "
        "it), reject (409 session_busy) or interrupt (cancel it, then run).",
    )

    @field_validator("input", "session_id", "tweaks", "metadata", "webhook")
    @classmethod
    def _storable(cls, value: Any, info: Any) -> Any:
        refuse_unstorable(value, info.field_name)
        return value


class IngestCreate(BaseModel):
    """Run a flow's ingest part: files to vectors, once per content (docs/rag.md)."""

    model_config = ConfigDict(extra="forbid")

    tweaks: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-component field overrides, LangFlow style (e.g. a File node's path).",
    )
    webhook: str | None = Field(
        default=None, max_length=2048, description="URL that receives the finished run."
    )

    @field_validator("tweaks", "webhook")
    @classmethod
    def _storable(cls, value: Any, info: Any) -> Any:
        refuse_unstorable(value, info.field_name)
        return value


class BatchCreate(BaseModel):
    """Submit many runs of one flow at once."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[RunCreate] = Field(min_length=1, description="One entry per run.")


class BatchAccepted(BaseModel):
    """The runs a batch created, in the order of its inputs."""

    run_ids: list[str]


class RunError(BaseModel):
    code: str
    message: str


class RunOut(BaseModel):
    """A run: its status, result and timings."""

    id: str
    flow_id: str
    flow_version: str
    session_id: str | None
    status: RunStatus
    input: str | None
    tweaks: dict[str, Any]
    metadata: dict[str, Any]
    output: dict[str, Any] | None
    error: RunError | None
    usage: dict[str, Any] | None
    cached: bool
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    webhook: dict[str, Any] | None = None


class RunPage(BaseModel):
    """One page of runs, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[RunOut]
    next_cursor: str | None


class MessageOut(BaseModel):
    id: int
    run_id: str
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime


class SessionMessages(BaseModel):
    """A page of a session's history, oldest first; pass ``next_after`` as ``after`` for more."""

    session_id: str
    messages: list[MessageOut]
    next_after: int | None = None


class FlowSummary(BaseModel):
    id: str
    name: str
    description: str
    kind: str
    owner: str  # "system" for a shared flow, else the id of the key that uploaded it
    version: str
    updated_at: datetime


class FlowOut(FlowSummary):
    """A flow as the registry knows it: what it reads, what it is made of, where it calls."""

    inputs: list[dict[str, Any]]
    components: list[dict[str, Any]]
    models: list[str]
    backends: list[str]
    uses_input: bool
    uses_history: bool
    options: dict[str, Any]
    # The current version drawn: {"nodes": [{id, type, display_name, kind, position...}],
    # "edges": [{id, source, target, source_output, target_field}]}; None for Python flows.
    graph: dict[str, Any] | None = None


class FlowVersionOut(BaseModel):
    version: str
    kind: str
    created_at: datetime
    current: bool  # the version new runs get


class FlowVersions(BaseModel):
    flow_id: str
    items: list[FlowVersionOut]  # newest first


class FlowList(BaseModel):
    items: list[FlowSummary]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


def run_out(run: Any) -> RunOut:
    """The API view of a ``shared.models.Run``."""
    error = (
        RunError(code=run.error_code, message=run.error_message or "") if run.error_code else None
    )
    return RunOut(
        id=run.id,
        flow_id=run.flow_id,
        flow_version=run.flow_version,
        session_id=run.session_id,
        status=run.status,
        input=run.input,
        tweaks=run.tweaks or {},
        metadata=run.meta or {},
        output=run.output,
        error=error,
        usage=run.usage,
        cached=run.cached,
        attempts=run.attempts,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        webhook=run.webhook,
    )


class StepOut(BaseModel):
    """One step of a run's agent: a tool call (``args``) or its result (``status``, ``result``)."""

    event: Literal["tool_call", "tool_result"]
    attempt: int
    id: str  # the tool call's id; a call and its result share it
    name: str
    args: dict[str, Any] | None = None
    status: str | None = None
    result: str | None = None
    created_at: datetime


class RunSteps(BaseModel):
    """A run's agent steps in the order they happened, across attempts."""

    run_id: str
    items: list[StepOut]
