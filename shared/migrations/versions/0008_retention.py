"""retention: per-owner retention policies, and indexes for every list and the purge job

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAS_ERROR = sa.text("error_code IS NOT NULL")
# A session id belongs to one owner, which PostgreSQL cannot know: it multiplies the two
# columns' frequencies, judges "this session AND this owner" rare on a large table and sorts
# the whole session instead of walking an index (58 ms for a 20,000-message session among
# 10,000,000 messages; 0.4 ms walking). The functional-dependency statistics tell it.
_SESSION_OWNER_STATS = "st_session_messages_session_owner"
_LIVE = sa.text("status IN ('queued', 'running')")

# (name, table, columns): plain indexes this revision adds. Each serves a list the API
# offers (newest first, keyset on created_at and id) or the retention job's oldest-first
# walk (worker/retention.py); tests/api/test_list_plans.py checks the plans on PostgreSQL.
_INDEXES = [
    ("ix_runs_created_id", "runs", ["created_at", "id"]),
    ("ix_runs_owner_created", "runs", ["owner", "created_at", "id"]),
    # Deleting a run finds its messages by run_id (the foreign key has no index before).
    ("ix_session_messages_run_id", "session_messages", ["run_id"]),
    ("ix_session_messages_created_id", "session_messages", ["created_at", "id"]),
    ("ix_session_messages_owner_created", "session_messages", ["owner", "created_at", "id"]),
    # A key's read of its own session in id order (the worker's Memory, the history API):
    # exact even where owners share a session id (a LangFlow client's default is the flow's
    # id); 0001's (session_id, id) stays for an admin's read. See _SESSION_OWNER_STATS.
    ("ix_session_messages_session_owner_id", "session_messages", ["session_id", "owner", "id"]),
    ("ix_run_steps_created_id", "run_steps", ["created_at", "id"]),
    ("ix_files_created_id", "files", ["created_at", "id"]),
    ("ix_schedules_created_id", "schedules", ["created_at", "id"]),
]


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("runs_days", sa.Float(), nullable=True),
        sa.Column("events_days", sa.Float(), nullable=True),
        sa.Column("messages_days", sa.Float(), nullable=True),
        sa.Column("dead_letters_days", sa.Float(), nullable=True),
        sa.Column("session_max_turns", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_retention_policies")),
    )
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns, unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE STATISTICS {_SESSION_OWNER_STATS} (dependencies) "
            "ON session_id, owner FROM session_messages"
        )
    # A session's unfinished runs (0006) in the whole submit order (created_at, id): with
    # ix_runs_owner_created beside it, the planner would otherwise prefer that one for the
    # turn lookup's ORDER BY created_at, id on a small table.
    _session_active(["owner", "session_id", "created_at", "id"])
    op.create_index(
        "ix_runs_error_code_created",
        "runs",
        ["error_code", "created_at"],
        unique=False,
        postgresql_where=_HAS_ERROR,
        sqlite_where=_HAS_ERROR,
    )


def _session_active(columns: list[str]) -> None:
    op.drop_index("ix_runs_session_active", table_name="runs")
    op.create_index(
        "ix_runs_session_active",
        "runs",
        columns,
        unique=False,
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_runs_error_code_created", table_name="runs")
    _session_active(["owner", "session_id", "created_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP STATISTICS IF EXISTS {_SESSION_OWNER_STATS}")
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("retention_policies")
