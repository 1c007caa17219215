"""activities, their branches and attendance; study and volunteer entries from activities

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_STRING = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _STRING(length=20), nullable=False),
        sa.Column("title", _STRING(length=100), nullable=False),
        sa.Column("place", _STRING(length=100), nullable=False),
        sa.Column("starts_at", _TIME(), nullable=False),
        sa.Column("ends_at", _TIME(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("role", _STRING(length=20), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("volunteer_minutes", sa.Integer(), nullable=False),
        sa.Column("organiser_id", sa.Integer(), nullable=False),
        sa.Column("secret", _STRING(length=64), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.ForeignKeyConstraint(["branch_id"], ["branch.id"]),
        sa.ForeignKeyConstraint(["organiser_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_activity_starts_at", "activity", ["starts_at"])
    op.create_table(
        "activitybranch",
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["activity_id"], ["activity.id"]),
        sa.ForeignKeyConstraint(["branch_id"], ["branch.id"]),
        sa.PrimaryKeyConstraint("activity_id", "branch_id"),
    )
    op.create_table(
        "attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("state", _STRING(length=20), nullable=False),
        sa.Column("queued_at", _TIME(), nullable=False),
        sa.Column("reason", _STRING(length=200), nullable=False),
        sa.Column("signed_in_at", _TIME(), nullable=True),
        sa.Column("signed_in_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["activity_id"], ["activity.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.ForeignKeyConstraint(["signed_in_by"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("activity_id", "member_id"),
    )
    op.create_index("ix_attendance_activity_state", "attendance", ["activity_id", "state"])
    op.create_index("ix_attendance_member_id", "attendance", ["member_id"])
    for table in ("studyentry", "volunteerentry"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("activity_id", sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                f"fk_{table}_activity_id", "activity", ["activity_id"], ["id"]
            )
            batch_op.create_index(
                f"ux_{table}_member_activity", ["member_id", "activity_id"], unique=True
            )


def downgrade() -> None:
    for table in ("volunteerentry", "studyentry"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ux_{table}_member_activity")
            batch_op.drop_constraint(f"fk_{table}_activity_id", type_="foreignkey")
            batch_op.drop_column("activity_id")
    op.drop_table("attendance")
    op.drop_table("activitybranch")
    op.drop_table("activity")
