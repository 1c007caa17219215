"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 16:04:15.802519
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("summary", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("publish_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("quiz_question", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("quiz_options", sa.Text(), nullable=False),
        sa.Column("quiz_answer", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("quiz_explanation", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.create_index("ix_article_kind_publish", ["kind", "publish_at"], unique=False)

    op.create_table(
        "bindfailure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bindfailure", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bindfailure_sender", ["channel", "external_id", "at"], unique=False
        )

    op.create_table(
        "branch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "processedmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "key"),
    )
    with op.batch_alter_table("processedmessage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processedmessage_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("roster_id", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("joined_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branch.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("roster_id"),
    )
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_branch_id"), ["branch_id"], unique=False)

    op.create_table(
        "articleread",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("read_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["article.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id", "article_id"),
    )
    with op.batch_alter_table("articleread", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_articleread_article_id"), ["article_id"], unique=False)

    op.create_table(
        "binding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.Column("bound_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id"),
        sa.UniqueConstraint("channel", "member_id"),
    )
    with op.batch_alter_table("binding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_binding_member_id"), ["member_id"], unique=False)

    op.create_table(
        "mailboxitem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mailboxitem", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mailboxitem_member_open", ["member_id", "delivered_at"], unique=False
        )

    op.create_table(
        "note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("chars", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("note", schema=None) as batch_op:
        batch_op.create_index("ix_note_member_day", ["member_id", "day"], unique=False)

    op.create_table(
        "pointsentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("ref", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id", "source", "ref"),
    )
    with op.batch_alter_table("pointsentry", schema=None) as batch_op:
        batch_op.create_index("ix_pointsentry_day", ["day"], unique=False)
        batch_op.create_index("ix_pointsentry_member_day", ["member_id", "day"], unique=False)

    op.create_table(
        "quizanswer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("choice", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("answered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["article.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id", "article_id"),
    )
    with op.batch_alter_table("quizanswer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quizanswer_article_id"), ["article_id"], unique=False)

    op.create_table(
        "studyentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("studyentry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_studyentry_day"), ["day"], unique=False)
        batch_op.create_index("ix_studyentry_member_day", ["member_id", "day"], unique=False)

    op.create_table(
        "volunteerentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("volunteerentry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_volunteerentry_member_id"), ["member_id"], unique=False
        )
        batch_op.create_index("ix_volunteerentry_state", ["state", "member_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("volunteerentry", schema=None) as batch_op:
        batch_op.drop_index("ix_volunteerentry_state")
        batch_op.drop_index(batch_op.f("ix_volunteerentry_member_id"))

    op.drop_table("volunteerentry")
    with op.batch_alter_table("studyentry", schema=None) as batch_op:
        batch_op.drop_index("ix_studyentry_member_day")
        batch_op.drop_index(batch_op.f("ix_studyentry_day"))

    op.drop_table("studyentry")
    with op.batch_alter_table("quizanswer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quizanswer_article_id"))

    op.drop_table("quizanswer")
    with op.batch_alter_table("pointsentry", schema=None) as batch_op:
        batch_op.drop_index("ix_pointsentry_member_day")
        batch_op.drop_index("ix_pointsentry_day")

    op.drop_table("pointsentry")
    with op.batch_alter_table("note", schema=None) as batch_op:
        batch_op.drop_index("ix_note_member_day")

    op.drop_table("note")
    with op.batch_alter_table("mailboxitem", schema=None) as batch_op:
        batch_op.drop_index("ix_mailboxitem_member_open")

    op.drop_table("mailboxitem")
    with op.batch_alter_table("binding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_binding_member_id"))

    op.drop_table("binding")
    with op.batch_alter_table("articleread", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_articleread_article_id"))

    op.drop_table("articleread")
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_branch_id"))

    op.drop_table("member")
    with op.batch_alter_table("processedmessage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processedmessage_created_at"))

    op.drop_table("processedmessage")
    op.drop_table("branch")
    with op.batch_alter_table("bindfailure", schema=None) as batch_op:
        batch_op.drop_index("ix_bindfailure_sender")

    op.drop_table("bindfailure")
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_index("ix_article_kind_publish")

    op.drop_table("article")
