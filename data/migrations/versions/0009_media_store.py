"""materials kept for good: the fetch job and the stored file of each material

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
# Re-chained at merge after 0008–0010 (other branches).
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "materialfile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("material_id", sa.Integer(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("done_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mime", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("original_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["material_id"], ["material.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("material_id"),
    )
    with op.batch_alter_table("materialfile", schema=None) as batch_op:
        batch_op.create_index("ix_materialfile_due", ["state", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_materialfile_sha256"), ["sha256"], unique=False)
    # Materials sent before this revision: their platform media may still be alive.
    op.execute(
        "INSERT INTO materialfile (material_id, state, attempts, due_at, last_error, sha256,"
        " mime, original_name) SELECT id, 'pending', 0, created_at, '', '', '', ''"
        " FROM material"
    )


def downgrade() -> None:
    with op.batch_alter_table("materialfile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_materialfile_sha256"))
        batch_op.drop_index("ix_materialfile_due")
    op.drop_table("materialfile")
