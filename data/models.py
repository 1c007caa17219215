"""The tables. Timestamps are aware, stored as UTC; `day` columns are days in QIYI_TIMEZONE."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Role(StrEnum):
    MEMBER = "member"
    SECRETARY = "secretary"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"member": 1, "secretary": 2, "admin": 3}[self.value]


class ReviewState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ArticleKind(StrEnum):
    LESSON = "lesson"  # 微党课
    NEWS = "news"  # 微资讯
    VIDEO = "video"  # 微视频: a title, a summary and the video (a link or an uploaded MP4)


class Branch(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)


class Member(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    roster_id: str = Field(max_length=50, unique=True)  # the roster's member_id (工号)
    name: str = Field(max_length=100)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    role: str = Field(default=Role.MEMBER.value, max_length=20)
    joined_at: dt.datetime
    reminder_enabled: bool = True
    reminder_time: dt.time | None = None  # None: the organisation's QIYI_REMINDER_TIME
    # The last 4 digits of the member's phone, when the roster has a phone column: a proof
    # of identity for `绑定` under QIYI_BIND_PROOF=phone4 (the whole number is not kept).
    phone_tail: str = Field(default="", max_length=4)
    # The day the member left the organisation: history kept, no binding, no pushes.
    left_on: dt.date | None = None


class Binding(SQLModel, table=True):
    """One chat account of a member on one channel (WeChat openid, QQ number…)."""

    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        UniqueConstraint("channel", "member_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=128)
    member_id: int = Field(foreign_key="member.id", index=True)
    reachable: bool = True
    bound_at: dt.datetime
    # The platform's window for pushing to this account (WeChat: 48 h and 5 messages
    # after the member writes; 1 minute and 3 after a subscribe or a menu click).
    window_until: dt.datetime | None = None
    window_budget: int = 0
    window_used: int = 0


class Invitation(SQLModel, table=True):
    """A one-time binding code the office issued to a member (`qiyi members invite`): valid
    until used or issued again. Only a salted hash of the code is kept."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", unique=True)  # one live code a member
    code_hash: str = Field(max_length=200)
    issued_at: dt.datetime
    used_at: dt.datetime | None = None


class AuditEntry(SQLModel, table=True):
    """Append-only: who changed what, when and through which door. Never updated or deleted
    (the database refuses both: see migration 0006)."""

    __table_args__ = (
        Index("ix_auditentry_at", "at"),
        Index("ix_auditentry_branch_at", "branch_id", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime
    actor_id: int | None = Field(default=None, foreign_key="member.id")  # None: CLI, system
    actor: str = Field(max_length=120)  # who, as a person reads it: "刘洋（9001）", "cli:root"
    door: str = Field(max_length=20)  # chat | console | cli | system
    origin: str = Field(default="", max_length=120)  # the chat channel, an IP, the host
    action: str = Field(max_length=40)  # e.g. member.unbind, member.role, volunteer.approve
    object_type: str = Field(max_length=40)
    object_id: str = Field(max_length=80)
    branch_id: int | None = Field(default=None, foreign_key="branch.id")  # the object's branch
    before: str = Field(default="", sa_column=Column(Text, nullable=False))  # JSON
    after: str = Field(default="", sa_column=Column(Text, nullable=False))  # JSON


class SeenRequest(SQLModel, table=True):
    """A plain-mode (unencrypted) WeChat request's timestamp and nonce, kept for the replay
    window with a hash of its body: the same pair with another body is a forgery, the same
    body a platform retry."""

    __table_args__ = (UniqueConstraint("channel", "timestamp", "nonce"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))  # past 2038 too
    nonce: str = Field(max_length=64)
    body_hash: str = Field(max_length=64)
    created_at: dt.datetime = Field(index=True)


class BindFailure(SQLModel, table=True):
    """A failed `绑定`, kept to throttle guessing from one account."""

    __table_args__ = (Index("ix_bindfailure_sender", "channel", "external_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=128)
    at: dt.datetime


class StudyEntry(SQLModel, table=True):
    __table_args__ = (
        Index("ix_studyentry_member_day", "member_id", "day"),
        # An activity attended is credited once (NULLs, the members' own entries, may repeat).
        Index("ux_studyentry_member_activity", "member_id", "activity_id", unique=True),
        # A day's (or a period's) minutes per member from the index alone: the console's
        # overview sums today's for every member in scope, the reports a period's.
        Index("ix_studyentry_day_member", "day", "member_id", "minutes"),
    )
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    day: dt.date
    minutes: int
    note: str = Field(default="", max_length=200)
    created_at: dt.datetime
    activity_id: int | None = Field(default=None, foreign_key="activity.id")  # a 党课 attended


class VolunteerEntry(SQLModel, table=True):
    __table_args__ = (
        Index("ix_volunteerentry_state", "state", "member_id"),
        Index("ux_volunteerentry_member_activity", "member_id", "activity_id", unique=True),
    )
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    minutes: int
    description: str = Field(max_length=200)
    day: dt.date
    state: str = Field(default=ReviewState.PENDING.value, max_length=20)
    reviewer_id: int | None = Field(default=None, foreign_key="member.id")
    reviewed_at: dt.datetime | None = None
    reason: str = Field(default="", max_length=200)
    created_at: dt.datetime
    activity_id: int | None = Field(default=None, foreign_key="activity.id")  # 志愿活动 attended


class Note(SQLModel, table=True):
    __table_args__ = (Index("ix_note_member_day", "member_id", "day"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    day: dt.date
    chars: int
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime


class Article(SQLModel, table=True):
    """A micro-lesson, micro-news or micro-video item, loaded from `content/` by `qiyi content
    sync` or written in the console; once edited in the console, sync leaves it alone."""

    __table_args__ = (Index("ix_article_kind_publish", "kind", "publish_at"),)
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=120, unique=True)
    kind: str = Field(max_length=20)
    title: str = Field(max_length=200)
    summary: str = Field(default="", max_length=500)
    body: str = Field(sa_column=Column(Text, nullable=False))
    url: str = Field(default="", max_length=500)
    publish_at: dt.datetime
    quiz_question: str = Field(default="", max_length=500)
    quiz_options: str = Field(default="", sa_column=Column(Text, nullable=False))  # JSON
    quiz_answer: str = Field(default="", max_length=5)
    quiz_explanation: str = Field(default="", max_length=500)
    pushed_at: dt.datetime | None = None
    hidden: bool = False  # unpublished: members do not see it, nothing pushes it
    edited_at: dt.datetime | None = None  # last saved in the console (sync then skips it)
    # Uploaded in the console, kept in the media store by SHA-256 ("" for none): a cover
    # picture (its type read from its bytes) and, for a 微视频, an MP4.
    cover: str = Field(default="", max_length=64)
    cover_mime: str = Field(default="", max_length=20)
    video: str = Field(default="", max_length=64)


class ArticleVersion(SQLModel, table=True):
    """An article as it was before a console edit: who replaced it and when; restorable."""

    __table_args__ = (Index("ix_articleversion_article", "article_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id")
    saved_at: dt.datetime  # when it was replaced
    saved_by: int | None = Field(default=None, foreign_key="member.id")
    fields: str = Field(sa_column=Column(Text, nullable=False))  # JSON of the editable fields


class PlatformUpload(SQLModel, table=True):
    """A stored file uploaded to a platform as temporary media (WeChat keeps it 3 days): its
    media id, reused while young enough, so one video pushed to every member is uploaded
    once. Replaced by the next upload of the same file."""

    __table_args__ = (UniqueConstraint("channel", "sha256"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    sha256: str = Field(max_length=64)
    media_id: str = Field(max_length=200)
    uploaded_at: dt.datetime


class ArticleRead(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("member_id", "article_id"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    article_id: int = Field(foreign_key="article.id", index=True)
    read_at: dt.datetime


class QuizAnswer(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("member_id", "article_id"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    article_id: int = Field(foreign_key="article.id", index=True)
    choice: str = Field(max_length=5)
    correct: bool
    answered_at: dt.datetime


class PointsEntry(SQLModel, table=True):
    """The append-only points ledger: one row per award, never updated."""

    __table_args__ = (
        UniqueConstraint("member_id", "source", "ref"),
        Index("ix_pointsentry_member_day", "member_id", "day"),
        Index("ix_pointsentry_day", "day"),
    )
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    points: int
    source: str = Field(max_length=20)
    ref: str = Field(max_length=80)  # what earned it, e.g. "study:2026-11-25:3"
    reason: str = Field(max_length=200)
    day: dt.date
    created_at: dt.datetime


class MailboxItem(SQLModel, table=True):
    """A notice waiting for the member's next message (review results, missed pushes)."""

    __table_args__ = (Index("ix_mailboxitem_member_open", "member_id", "delivered_at"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime
    delivered_at: dt.datetime | None = None


class ProcessedMessage(SQLModel, table=True):
    """Every inbound message once: the unique key is the retry dedupe, across processes."""

    __table_args__ = (UniqueConstraint("channel", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    key: str = Field(max_length=200)
    reply: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(index=True)


class PushKind(StrEnum):
    REVIEW = "review"
    REMINDER = "reminder"
    LESSON = "lesson"
    NEWS = "news"
    VIDEO = "video"
    ALERT = "alert"  # a configuration problem, told to admins
    REPORT = "report"  # the month's scores, the quarter's bulletin, the year's summary
    SECURITY = "security"  # the member's record gained a binding on another channel
    NOTICE = "notice"  # a notice (通知) the office or a secretary sent from the console
    ACTIVITY = "activity"  # an activity published: to the members it expects or invites
    ACTIVITY_REMINDER = "activity_reminder"  # an activity about to start

    @property
    def priority(self) -> int:
        """Lower goes first when a member's push budget is short."""
        return {
            "review": 0,
            "reminder": 0,
            "alert": 0,
            "security": 0,
            "notice": 0,
            "activity": 0,
            "activity_reminder": 0,
            "lesson": 1,
            "report": 1,
            "news": 2,
            "video": 2,
        }[self.value]


class OutboxState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a dispatcher until `lease_until`
    SENT = "sent"  # as a customer-service message
    FALLBACK = "fallback"  # as a template message
    MAILBOX = "mailbox"  # kept for (or already shown in) the member's next reply
    FAILED = "failed"
    SKIPPED = "skipped"  # the member cannot be reached any more


class OutboxItem(SQLModel, table=True):
    """One intended push. The unique key (member, kind, reference, local day) is the dedupe."""

    __table_args__ = (
        Index("ix_outboxitem_due", "state", "due_at"),
        Index("ix_outboxitem_member_state", "member_id", "state"),
        # The console's overview counts today's pushes by state: the outbox keeps 90 days.
        Index("ix_outboxitem_day", "day", "member_id", "state"),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    member_id: int = Field(foreign_key="member.id")
    kind: str = Field(max_length=20)
    priority: int
    text: str = Field(sa_column=Column(Text, nullable=False))  # the whole message
    # A short form, for a mailbox or a template message: as long as a review result with its
    # reason (no fixed column width to overflow), cut by `data.outbox` to fit a reply.
    brief: str = Field(sa_column=Column(Text, nullable=False))
    image: str = Field(default="", max_length=500)  # a picture file sent after the text
    day: dt.date
    due_at: dt.datetime
    state: str = Field(default=OutboxState.PENDING.value, max_length=20)
    attempts: int = 0
    lease_until: dt.datetime | None = None
    last_error: str = Field(default="", max_length=300)
    done_at: dt.datetime | None = None
    created_at: dt.datetime


class DeliveryAttempt(SQLModel, table=True):
    """Every try at delivering an outbox item, with the platform's answer."""

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outboxitem.id", index=True)
    at: dt.datetime
    # custom | image | template | wecom | qq | qq-group | mailbox | reply | none | dispatch
    method: str = Field(max_length=20)
    ok: bool
    errcode: int | None = None
    detail: str = Field(default="", max_length=300)


class AccessToken(SQLModel, table=True):
    """The platform access token, shared by every process through the database."""

    id: int | None = Field(default=None, primary_key=True)
    appid: str = Field(max_length=64, unique=True)
    token: str = Field(max_length=600)
    expires_at: dt.datetime
    fetched_at: dt.datetime


class BranchGroup(SQLModel, table=True):
    """A branch's chat group on a channel (a QQ group), where lessons and news are posted."""

    __table_args__ = (
        UniqueConstraint("branch_id", "channel"),
        UniqueConstraint("channel", "group_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id")
    channel: str = Field(max_length=20)
    group_id: str = Field(max_length=64)


class GroupPost(SQLModel, table=True):
    """A lesson or news item for a branch group; the key (group, kind, reference, day) dedupes."""

    __table_args__ = (Index("ix_grouppost_due", "state", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    channel: str = Field(max_length=20)
    group_id: str = Field(max_length=64)
    kind: str = Field(max_length=20)
    text: str = Field(sa_column=Column(Text, nullable=False))
    image: str = Field(default="", max_length=500)  # a picture file posted with the text
    day: dt.date
    due_at: dt.datetime
    state: str = Field(default=OutboxState.PENDING.value, max_length=20)
    attempts: int = 0
    lease_until: dt.datetime | None = None
    last_error: str = Field(default="", max_length=300)
    done_at: dt.datetime | None = None
    created_at: dt.datetime


class Material(SQLModel, table=True):
    """A document, picture or video a secretary sent for the branch's record (资料)."""

    __table_args__ = (Index("ix_material_branch_day", "branch_id", "day"),)
    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id")
    member_id: int = Field(foreign_key="member.id")
    kind: str = Field(max_length=20)  # image | video | file
    channel: str = Field(max_length=20)
    reference: str = Field(max_length=500)  # the platform's media id or URL
    description: str = Field(default="", max_length=200)
    day: dt.date
    created_at: dt.datetime
    # The activity it records (会议记录, photos): linked when sent on the day of an activity
    # of the branch, or by hand in the console.
    activity_id: int | None = Field(default=None, foreign_key="activity.id", index=True)


class FetchState(StrEnum):
    """Where a material's file is: waiting to be fetched, being fetched (leased until
    `lease_until`), kept in the media store, or given up on (`last_error` says why)."""

    PENDING = "pending"
    FETCHING = "fetching"
    STORED = "stored"
    FAILED = "failed"


class MaterialFile(SQLModel, table=True):
    """A material's file, fetched from the platform by a durable job and kept in the media
    store under its SHA-256. The original name is for display only: no path is made of it."""

    __table_args__ = (Index("ix_materialfile_due", "state", "due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    material_id: int = Field(foreign_key="material.id", unique=True)
    state: str = Field(default=FetchState.PENDING.value, max_length=20)
    attempts: int = 0
    due_at: dt.datetime
    lease_until: dt.datetime | None = None
    last_error: str = Field(default="", max_length=300)
    done_at: dt.datetime | None = None
    sha256: str = Field(default="", max_length=64, index=True)
    size: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    mime: str = Field(default="", max_length=100)
    original_name: str = Field(default="", max_length=200)


class DialogState(SQLModel, table=True):
    """A member's multi-step dialog in progress (e.g. a caption waiting for pictures)."""

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    state: str = Field(max_length=40)
    data: str = Field(default="", sa_column=Column(Text, nullable=False))  # JSON
    expires_at: dt.datetime


class ConsoleSignIn(SQLModel, table=True):
    """A sign-in to the web console under way: a 6-digit code shown in a browser, which a
    secretary or admin sends to the bot (`登录 123456`), or a one-time link the bot gave them
    (`登录`). The browser's waiting token and the link's token are kept only as hashes."""

    __table_args__ = (Index("ix_consolesignin_code", "code", "expires_at"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)  # code | link
    token_hash: str = Field(max_length=64, unique=True)
    code: str = Field(default="", max_length=6)  # kind=code: what the page shows
    member_id: int | None = Field(default=None, foreign_key="member.id")  # who signs in
    channel: str = Field(default="", max_length=20)  # where the code was sent from
    ip: str = Field(default="", max_length=64)  # the browser's, for the bot's answer
    user_agent: str = Field(default="", max_length=300)
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None  # a session was made from it: never again


class ConsoleSession(SQLModel, table=True):
    """A signed-in console browser. The cookie holds a random id; the row its SHA-256."""

    __table_args__ = (Index("ix_consolesession_member", "member_id", "ended_at"),)
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    csrf: str = Field(max_length=64)  # the token every POST of this session carries
    member_id: int = Field(foreign_key="member.id")
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime  # the hard end, whatever the use
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)
    ended_at: dt.datetime | None = None
    ended_by: str = Field(default="", max_length=40)  # logout | admin | role | left


class Throttle(SQLModel, table=True):
    """One counted event (a wrong sign-in code, a sign-in page asked for) per scope and key,
    so limits hold across server processes."""

    __table_args__ = (Index("ix_throttle_scope_key_at", "scope", "key", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=40)
    key: str = Field(max_length=200)
    at: dt.datetime = Field(index=True)


class RosterDraft(SQLModel, table=True):
    """An uploaded roster waiting for 确认导入 in the console: the rows as read (or the
    problems found), usable only by the staff member who uploaded it, for a short while."""

    id: str = Field(primary_key=True, max_length=64)  # random, unguessable
    member_id: int = Field(foreign_key="member.id")
    created_at: dt.datetime = Field(index=True)
    file_name: str = Field(default="", max_length=100)  # shown only, never opened
    content: str = Field(sa_column=Column(Text, nullable=False))  # JSON: rows and problems


class Notice(SQLModel, table=True):
    """A notice (通知) sent from the console: its text, to whom, by whom. Its pushes are
    outbox rows keyed by its id, one per member; `token` makes a resent form a no-op."""

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=64, unique=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    audience: str = Field(max_length=500)  # JSON: {"branches": [ids]} or {"role": …} or {}
    sent_by: int = Field(foreign_key="member.id")
    sent_at: dt.datetime
    recipients: int = 0


class MonthGrade(SQLModel, table=True):
    """The office's grade of a branch's materials for a month (月打分): as it was given and
    the share (0..1) it counts for in the score's `grading` part. Changed in place until the
    month is closed; every change is in the audit log."""

    __table_args__ = (UniqueConstraint("branch_id", "month"),)
    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id")
    month: dt.date  # the month's first day
    grade: str = Field(max_length=10)  # a level (优, 良 …) or a number ("85")
    value: float  # the part's share, 0..1, under the rules in force when it was given
    comment: str = Field(default="", max_length=500)
    graded_by: int | None = Field(default=None, foreign_key="member.id")
    grader: str = Field(max_length=120)  # who, as a person reads it
    graded_at: dt.datetime


class ClosedMonth(SQLModel, table=True):
    """A closed month (关账): its figures are frozen in `FrozenBranchScore` and `figures`, and
    its reports read them instead of computing anew. Reopening deletes the row."""

    month: dt.date = Field(primary_key=True)  # the month's first day
    closed_at: dt.datetime
    closed_by: str = Field(max_length=120)
    figures: str = Field(sa_column=Column(Text, nullable=False))  # JSON: weights, members


class FrozenBranchScore(SQLModel, table=True):
    """A branch's score, parts and rank in a closed month, as computed when it was closed."""

    __table_args__ = (UniqueConstraint("month", "branch_id"),)
    id: int | None = Field(default=None, primary_key=True)
    month: dt.date = Field(foreign_key="closedmonth.month")
    branch_id: int = Field(foreign_key="branch.id")
    branch: str = Field(max_length=100)
    members: int
    score: float | None = None
    rank: int | None = None
    parts: str = Field(sa_column=Column(Text, nullable=False))  # JSON: part -> share


class ActivityKind(StrEnum):
    """The kinds of 组织生活 and other activities; their Chinese names are in
    `bot.activities.KIND_NAMES`."""

    GENERAL_MEETING = "general_meeting"  # 支部党员大会
    COMMITTEE = "committee"  # 支委会
    GROUP_MEETING = "group_meeting"  # 党小组会
    LECTURE = "lecture"  # 党课
    PARTY_DAY = "party_day"  # 主题党日
    TRAINING = "training"  # 培训 (夜校)
    VOLUNTEER = "volunteer"  # 志愿活动
    OTHER = "other"  # 其他


class Activity(SQLModel, table=True):
    """A meeting, lecture, training or volunteer activity. Who is expected: the members of
    its `ActivityBranch` rows (none: every branch) of `role` (None: every role); with a
    `capacity`, only those of them who signed up (报名). Sign-in codes are derived from
    `secret` and the time; none is stored."""

    __table_args__ = (Index("ix_activity_starts_at", "starts_at"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    title: str = Field(max_length=100)
    place: str = Field(max_length=100)
    starts_at: dt.datetime
    ends_at: dt.datetime
    branch_id: int | None = Field(default=None, foreign_key="branch.id")  # None: admin's, all
    role: str | None = Field(default=None, max_length=20)
    capacity: int | None = None  # open sign-up with this many places
    volunteer_minutes: int = 0  # credited to each member present (志愿活动)
    organiser_id: int = Field(foreign_key="member.id")
    secret: str = Field(max_length=64)
    created_at: dt.datetime


class ActivityBranch(SQLModel, table=True):
    """A branch whose members an activity expects."""

    activity_id: int = Field(foreign_key="activity.id", primary_key=True)
    branch_id: int = Field(foreign_key="branch.id", primary_key=True)


class AttendanceState(StrEnum):
    REGISTERED = "registered"  # signed up for an open activity
    WAITING = "waiting"  # signed up when it was full: moves up when a place frees
    CANCELLED = "cancelled"  # signed up, then withdrew
    LEAVE = "leave"  # 请假 before the start
    PRESENT = "present"  # signed in with a code, or by the organiser (补签)


class Attendance(SQLModel, table=True):
    """A member's sign-up, leave or presence at one activity: one row, changed in place."""

    __table_args__ = (
        UniqueConstraint("activity_id", "member_id"),
        Index("ix_attendance_activity_state", "activity_id", "state"),
    )
    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id")
    member_id: int = Field(foreign_key="member.id", index=True)
    state: str = Field(max_length=20)
    queued_at: dt.datetime  # when the member last signed up: the waiting list's order
    reason: str = Field(default="", max_length=200)  # of a leave, or of a 补签
    signed_in_at: dt.datetime | None = None
    signed_in_by: int | None = Field(default=None, foreign_key="member.id")  # 补签: the organiser
