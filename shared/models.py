"""Database models: flows and their versions, runs, session messages, API keys, files."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.run_status import TERMINAL_STATUSES, RunStatus

__all__ = ["TERMINAL_STATUSES", "RunStatus"]  # re-exported: older imports keep working

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ANONYMOUS = "anonymous"  # owner of runs created while auth is off
# Run metadata key of an ingest run (POST /v1/flows/{id}/ingest): only the flow's part that
# fills vector stores and knowledge bases runs (docs/rag.md, "Ingest once").
INGEST_FLAG = "flowfleet_ingest"
# Owner of the shared flows: the flows directory's and an admin's uploads. Every key may
# read and run them; only an admin may replace or delete them. Key ids are hex, so no
# key's owner id can be this.
SYSTEM = "system"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every database (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Flow(Base):
    """A named flow and the version new runs use.

    Flow ids are global: one owner holds an id (``SYSTEM`` for shared flows, else the key
    id that uploaded it), and another tenant's upload to a taken id is a conflict.
    """

    __tablename__ = "flows"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(
        String(64), default=SYSTEM, server_default=SYSTEM, index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    current_version: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(16))  # "dir" or "upload"
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FlowVersion(Base):
    """One immutable content version of a flow; runs point at the version they ran."""

    __tablename__ = "flow_versions"

    flow_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the light description
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One execution of a flow: the system of record for its status and result."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("owner", "idempotency_key", name="uq_runs_owner_idempotency_key"),
        Index("ix_runs_flow_created", "flow_id", "created_at"),
        Index("ix_runs_session_created", "session_id", "created_at"),
        Index("ix_runs_status_created", "status", "created_at"),
        # Listing newest first (all runs for an admin, one owner's for a key) and the
        # retention job's oldest-first walk (0008).
        Index("ix_runs_created_id", "created_at", "id"),
        Index("ix_runs_owner_created", "owner", "created_at", "id"),
        # ?error_code= (the dead letters); partial: most runs have none.
        Index(
            "ix_runs_error_code_created",
            "error_code",
            "created_at",
            postgresql_where=text("error_code IS NOT NULL"),
            sqlite_where=text("error_code IS NOT NULL"),
        ),
        # A session's unfinished runs in submit order: the claim's turn check and the next
        # turn's lookup (shared/session_order.py). Partial, so it holds only live runs.
        Index(
            "ix_runs_session_active",
            "owner",
            "session_id",
            "created_at",
            "id",  # 0008: the whole submit order, so no other index serves the lookup better
            postgresql_where=text("status IN ('queued', 'running')"),
            sqlite_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow_id: Mapped[str] = mapped_column(String(128))
    flow_version: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(128))
    owner: Mapped[str] = mapped_column(String(64), default=ANONYMOUS)
    input: Mapped[str | None] = mapped_column(Text)
    tweaks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED.value)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Execution lease: the worker holding it renews it; an expired lease means the worker died.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(128))  # host:pid that finished it
    idempotency_key: Mapped[str | None] = mapped_column(String(256))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # delivery status and attempts


# The runs table, typed for Core statements (the run writer inserts accepted runs with one).
RUNS = cast(Table, Run.__table__)


class SessionMessage(Base):
    """One turn of a conversation, written with the result of the run that produced it."""

    __tablename__ = "session_messages"
    __table_args__ = (
        # A session's history, oldest or newest first: a key's read (session and owner; exact
        # even where owners share a session id) and an admin's (session). Migration 0008 also
        # gives PostgreSQL statistics saying a session mostly has one owner: without them it
        # judges session AND owner rare on a large table and sorts the whole session.
        Index("ix_session_messages_session_owner_id", "session_id", "owner", "id"),
        Index("ix_session_messages_session_id_id", "session_id", "id"),
        # A run's messages: its delete (the foreign key) and the retention job's checks.
        Index("ix_session_messages_run_id", "run_id"),
        # The retention job's walk by age, over all owners and over one owner's (0008).
        Index("ix_session_messages_created_id", "created_at", "id"),
        Index("ix_session_messages_owner_created", "owner", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    session_id: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str] = mapped_column(String(64), default=ANONYMOUS)
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # "user" or "assistant"
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A client key; only its hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class RunStep(Base):
    """One tool call or tool result of a run's agent, or one model call, as it happened
    (docs/agents.md).

    Written as the step happens, not with the result: a run taken over after its worker
    died shows the steps of every attempt (``attempt``), which is what ran, tool side effects
    included.
    """

    __tablename__ = "run_steps"
    __table_args__ = (
        Index("ix_run_steps_run_id_id", "run_id", "id"),
        Index("ix_run_steps_created_id", "created_at", "id"),  # the retention job's walk (0008)
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # "tool_call", "tool_result", "model_call"
    tool_call_id: Mapped[str] = mapped_column(String(128))  # a model call's LangChain run id
    name: Mapped[str] = mapped_column(String(128))  # the tool's, or the model's
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # the event's data, as published
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredFile(Base):
    """An uploaded file (``POST /v1/files``) and its bytes, owned by the key that sent it.

    The bytes live in the database (bytea on PostgreSQL, a BLOB in the embedded SQLite
    file), so every API replica and worker reads them with no other service. ``content``
    is deferred: listing and metadata reads never load it.
    """

    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_owner_created", "owner", "created_at"),
        Index("ix_files_created_id", "created_at", "id"),  # an admin's list of all (0008)
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Schedule(Base):
    """A flow run on a cron schedule (docs/schedules.md): each firing is an ordinary run.

    ``next_fire_at`` is the due time of the next firing. A scheduler fires it by moving
    ``next_fire_at`` on with a conditional UPDATE (``WHERE next_fire_at = <the due time
    it read>``) in the transaction that inserts the run, so two schedulers cannot both
    fire one due time.
    """

    __tablename__ = "schedules"
    __table_args__ = (
        Index("ix_schedules_paused_next_fire_at", "paused", "next_fire_at"),
        Index("ix_schedules_owner_created", "owner", "created_at"),
        Index("ix_schedules_created_id", "created_at", "id"),  # an admin's list of all (0008)
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), default=ANONYMOUS)
    flow_id: Mapped[str] = mapped_column(String(128))
    # The flow's owner when the schedule was made: a firing refuses a flow that was deleted
    # and re-uploaded under the same id by someone else.
    flow_owner: Mapped[str] = mapped_column(String(64))
    cron: Mapped[str] = mapped_column(String(256))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    input: Mapped[str | None] = mapped_column(Text)
    tweaks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A fixed session (every firing continues one conversation), or None: a fresh one each.
    session_id: Mapped[str | None] = mapped_column(String(128))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    next_fire_at: Mapped[datetime]
    last_fired_at: Mapped[datetime | None]  # the due time of the last firing
    last_run_id: Mapped[str | None] = mapped_column(String(36))
    last_error: Mapped[str | None] = mapped_column(Text)  # why the last firing made no run
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlowTrigger(Base):
    """A flow's inbound trigger secret, by generation (docs/schedules.md, "Triggers").

    The secret itself is never stored: it is derived from the server's trigger key, the
    flow id and ``generation`` (shared/schedules.py ``trigger_secret``). Issuing a new one
    bumps the generation, which invalidates the old secret.
    """

    __tablename__ = "flow_triggers"

    flow_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))  # who issued it: the triggered runs' owner
    flow_owner: Mapped[str] = mapped_column(String(64))  # as for Schedule.flow_owner
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RagIngest(Base):
    """One ingest of a flow's documents into a collection, done once and reused.

    The key is content-addressed (owner, collection, the ingest half's settings and file
    contents, the embedding model): a run whose key is ``ready`` skips ingestion; the row
    in ``building`` is the lock, its lease lets another worker take over a dead builder.
    """

    __tablename__ = "rag_ingests"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    flow_id: Mapped[str] = mapped_column(String(128))
    collection: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # "building" or "ready"
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    builder: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class RetentionPolicy(Base):
    """One owner's retention, overriding the settings' (README "Retention").

    Per column: NULL follows the setting, 0 keeps forever, else days (turns for
    ``session_max_turns``). Managed by an admin: ``PUT /v1/retention/{owner}``.
    """

    __tablename__ = "retention_policies"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    runs_days: Mapped[float | None]
    events_days: Mapped[float | None]
    messages_days: Mapped[float | None]
    dead_letters_days: Mapped[float | None]
    session_max_turns: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
