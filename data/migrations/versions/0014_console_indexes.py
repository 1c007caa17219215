"""console indexes: the overview's today (pushes by state, minutes per member)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 03:58:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outboxitem", schema=None) as batch_op:
        batch_op.create_index("ix_outboxitem_day", ["day", "member_id", "state"], unique=False)
    # Replaces the index on the day alone, which it begins with.
    with op.batch_alter_table("studyentry", schema=None) as batch_op:
        batch_op.drop_index("ix_studyentry_day")
        batch_op.create_index(
            "ix_studyentry_day_member", ["day", "member_id", "minutes"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("studyentry", schema=None) as batch_op:
        batch_op.drop_index("ix_studyentry_day_member")
        batch_op.create_index("ix_studyentry_day", ["day"], unique=False)
    with op.batch_alter_table("outboxitem", schema=None) as batch_op:
        batch_op.drop_index("ix_outboxitem_day")
