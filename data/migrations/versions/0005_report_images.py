"""report images

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:34:34.854010
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grouppost", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "image",
                sqlmodel.sql.sqltypes.AutoString(length=500),
                nullable=False,
                server_default="",
            )
        )

    with op.batch_alter_table("outboxitem", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "image",
                sqlmodel.sql.sqltypes.AutoString(length=500),
                nullable=False,
                server_default="",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("outboxitem", schema=None) as batch_op:
        batch_op.drop_column("image")

    with op.batch_alter_table("grouppost", schema=None) as batch_op:
        batch_op.drop_column("image")
