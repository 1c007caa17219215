"""console content editing: article versions, unpublishing, the edit mark

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 03:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("edited_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    op.create_table(
        "articleversion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("saved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("saved_by", sa.Integer(), nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.ForeignKeyConstraint(["saved_by"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("articleversion", schema=None) as batch_op:
        batch_op.create_index("ix_articleversion_article", ["article_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("articleversion", schema=None) as batch_op:
        batch_op.drop_index("ix_articleversion_article")
    op.drop_table("articleversion")
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_column("edited_at")
        batch_op.drop_column("hidden")
