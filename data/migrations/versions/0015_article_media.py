"""article media: a cover picture and an uploaded video per article, platform uploads

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("article", schema=None) as batch_op:
        for name, length in (("cover", 64), ("cover_mime", 20), ("video", 64)):
            batch_op.add_column(
                sa.Column(
                    name,
                    sqlmodel.sql.sqltypes.AutoString(length=length),
                    nullable=False,
                    server_default="",
                )
            )
    op.create_table(
        "platformupload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("media_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("uploaded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "sha256"),
    )


def downgrade() -> None:
    op.drop_table("platformupload")
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_column("video")
        batch_op.drop_column("cover_mime")
        batch_op.drop_column("cover")
