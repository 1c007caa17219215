"""roster drafts: uploaded rosters waiting for 确认导入 in the console

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rosterdraft",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rosterdraft", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rosterdraft_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rosterdraft", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rosterdraft_created_at"))

    op.drop_table("rosterdraft")
