"""rag_ingests: one row per content-addressed ingest (the lock while building, then ready)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rag_ingests",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("flow_id", sa.String(length=128), nullable=False),
        sa.Column("collection", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("builder", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rag_ingests")),
    )
    op.create_index(op.f("ix_rag_ingests_owner"), "rag_ingests", ["owner"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_rag_ingests_owner"), table_name="rag_ingests")
    op.drop_table("rag_ingests")
