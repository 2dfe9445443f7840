"""session order: an index of each session's unfinished runs in submit order

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    # Partial: only queued and running runs are in it, so the claim's turn check and the
    # next-turn lookup stay cheap however many finished runs the table keeps.
    op.create_index(
        "ix_runs_session_active",
        "runs",
        ["owner", "session_id", "created_at"],
        unique=False,
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_runs_session_active", table_name="runs")
