"""flows have an owner: the key that uploaded them, or "system" for shared flows

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 09:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every flow so far was global (any key could run, replace or delete it): they become
    # shared "system" flows, which every key still reads and runs and only admins change.
    with op.batch_alter_table("flows") as batch:
        batch.add_column(
            sa.Column("owner", sa.String(length=64), nullable=False, server_default="system")
        )
        batch.create_index(batch.f("ix_flows_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("flows") as batch:
        batch.drop_index(batch.f("ix_flows_owner"))
        batch.drop_column("owner")
