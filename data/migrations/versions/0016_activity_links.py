"""activity links: a material (资料) may belong to an activity (its minutes, its photos)

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("material", schema=None) as batch_op:
        batch_op.add_column(sa.Column("activity_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_material_activity_id", "activity", ["activity_id"], ["id"])
        batch_op.create_index("ix_material_activity_id", ["activity_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("material", schema=None) as batch_op:
        batch_op.drop_index("ix_material_activity_id")
        batch_op.drop_constraint("fk_material_activity_id", type_="foreignkey")
        batch_op.drop_column("activity_id")
