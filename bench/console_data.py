"""What the console's pages show that `bench/reports.py`'s year lacks: an admin, bindings,
the audit log a year of binding, reviewing and signing in leaves, the staff's console
sessions, and the outbox of the last 90 days (what the nightly clean-up keeps).

The year already holds pending volunteer hours (15 % of the entries) for 审核. Rows are
added to the data set in foreign-key order, from their own `random.Random` (the year's
numbers are drawn as before).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from dataclasses import dataclass

from bench.reports import JOINED, SEED, Dataset, Rows, build_dataset, local
from bot.rules import load_rules
from data.models import (
    AuditEntry,
    Binding,
    ConsoleSession,
    Member,
    OutboxItem,
    OutboxState,
    PushKind,
    ReviewState,
    Role,
    VolunteerEntry,
)

WECHAT_SHARE = 0.95  # members bound on WeChat
QQ_SHARE = 0.30  # members also (or only) bound on QQ
CONSOLE_REVIEW_SHARE = 0.3  # approvals made in the console (the rest in chat)
SIGN_INS_PER_STAFF = 52  # a secretary signs in about once a week
REMINDED_SHARE = 0.3  # members reminded on a given day
OUTBOX_DAYS = 90  # QIYI_KEEP_DELIVERED_DAYS' default
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


@dataclass(frozen=True)
class Staff:
    """The two people the benchmark signs in."""

    admin_id: int
    secretary_id: int  # the secretary of branch 1
    secretary_branch: int


def _column(rows: Rows, name: str) -> int:
    return rows.columns.index(name)


def _table(dataset: Dataset, model: type) -> Rows:
    return next(t for t in dataset.tables if t.model is model)


def _add_admin(members: Rows) -> int:
    admin_id = len(members.rows) + 1
    members.add(admin_id, "900001", "党委办公室管理员", 1, Role.ADMIN.value, JOINED, False, None)
    return admin_id


def extend(dataset: Dataset, today: dt.date) -> Staff:
    """Adds the console's rows to `dataset` (a year ending on `today`); who signs in."""
    rng = random.Random(SEED + 1)
    members = _table(dataset, Member)
    role_at, branch_at = _column(members, "role"), _column(members, "branch_id")
    secretaries = {
        row[0]: row[branch_at] for row in members.rows if row[role_at] == Role.SECRETARY.value
    }
    admin_id = _add_admin(members)
    staff = {**secretaries, admin_id: 1}
    branch_of = {row[0]: row[branch_at] for row in members.rows}
    names = {row[0]: f"{row[2]}（{row[1]}）" for row in members.rows}

    bindings = Rows(Binding, ("id", "channel", "external_id", "member_id", "bound_at"))
    audit: list[tuple[object, ...]] = []  # rows without their id, sorted by time below

    def log(
        at: dt.datetime, actor: int, door: str, origin: str, action: str, object_type: str,
        object_id: object, branch: int, after: dict[str, object],
    ) -> None:  # fmt: skip
        after_json = json.dumps(after, ensure_ascii=False, sort_keys=True)
        audit.append((at, actor, names[actor], door, origin, action, object_type,
                      str(object_id), branch, "", after_json))  # fmt: skip

    year_start = dt.date(today.year, 1, 1)
    for member_id, branch in branch_of.items():
        for channel, share in (("wechat", WECHAT_SHARE), ("onebot", QQ_SHARE)):
            if rng.random() >= share:
                continue
            day = year_start + dt.timedelta(days=rng.randrange(60))
            at = local(day, rng.randint(8, 21), rng.randrange(60))
            bindings.add(len(bindings.rows) + 1, channel, f"{channel}-{member_id}", member_id, at)
            log(at, member_id, "chat", channel, "member.bind", "member", member_id, branch,
                {"channel": channel})  # fmt: skip

    volunteer = _table(dataset, VolunteerEntry)
    v = {name: _column(volunteer, name) for name in ("id", "member_id", "state", "reviewer_id")}
    reviewed_at = _column(volunteer, "reviewed_at")
    for row in volunteer.rows:
        if row[v["state"]] != ReviewState.APPROVED.value:
            continue
        console = rng.random() < CONSOLE_REVIEW_SHARE
        door, origin = ("console", "10.0.0.8") if console else ("chat", "wechat")
        log(row[reviewed_at], row[v["reviewer_id"]], door, origin, "volunteer.approve",
            "volunteer", row[v["id"]], branch_of[row[v["member_id"]]],
            {"state": "approved"})  # fmt: skip

    sessions = Rows(
        ConsoleSession,
        ("id", "token_hash", "csrf", "member_id", "created_at", "last_seen_at", "expires_at",
         "ip", "user_agent", "ended_at", "ended_by"),
    )  # fmt: skip
    for member_id, branch in staff.items():
        for week in range(SIGN_INS_PER_STAFF):
            day = year_start + dt.timedelta(days=7 * week + rng.randrange(7))
            if day >= today:
                break
            at = local(day, rng.randint(8, 17), rng.randrange(60))
            token = hashlib.sha256(f"bench-{member_id}-{week}".encode()).hexdigest()
            sessions.add(len(sessions.rows) + 1, token, token[:43], member_id, at,
                         at + dt.timedelta(hours=1), at + dt.timedelta(days=7), "10.0.0.8",
                         BROWSER, at + dt.timedelta(hours=2), "logout")  # fmt: skip
            log(at, member_id, "console", "10.0.0.8", "console.sign_in", "member",
                member_id, branch, {"how": "code"})  # fmt: skip

    entries = Rows(
        AuditEntry,
        ("id", "at", "actor_id", "actor", "door", "origin", "action", "object_type",
         "object_id", "branch_id", "before", "after"),
    )  # fmt: skip
    audit.sort(key=lambda row: row[0])  # type: ignore[arg-type,return-value]
    for number, row in enumerate(audit, start=1):
        entries.add(number, *row)

    outbox = _outbox(rng, sorted(branch_of), today)
    at = next(i for i, t in enumerate(dataset.tables) if t.model is Member) + 1
    dataset.tables[at:at] = [bindings, entries, sessions, outbox]
    return Staff(admin_id, next(iter(secretaries)), 1)


def _outbox(rng: random.Random, member_ids: list[int], today: dt.date) -> Rows:
    """Reminders to some members every day and the week's lesson to all, for 90 days;
    today's partly still waiting."""
    outbox = Rows(
        OutboxItem,
        ("id", "key", "member_id", "kind", "priority", "text", "brief", "day", "due_at",
         "state", "attempts", "done_at", "created_at"),
    )  # fmt: skip
    done_states = (OutboxState.SENT.value,) * 8 + (
        OutboxState.FALLBACK.value,
        OutboxState.MAILBOX.value,
        OutboxState.FAILED.value,
    )
    for back in range(OUTBOX_DAYS, -1, -1):
        day = today - dt.timedelta(days=back)
        lesson_day = day.weekday() == 0
        for member_id in member_ids:
            pushes = []
            if rng.random() < REMINDED_SHARE:
                pushes.append(
                    (PushKind.REMINDER, local(day, 20), "今天还没有学习记录，记得学习哦。")
                )
            if lesson_day:
                pushes.append(
                    (PushKind.LESSON, local(day, 9), "本周微党课已发布，发送“党课”阅读。")
                )
            for kind, due, text in pushes:
                waiting = back == 0 and rng.random() < 0.2
                state = OutboxState.PENDING.value if waiting else rng.choice(done_states)
                done = None if waiting else due + dt.timedelta(seconds=rng.randint(1, 120))
                outbox.add(len(outbox.rows) + 1, f"{kind.value}:{member_id}:{day}", member_id,
                           kind.value, kind.priority, text, text, day, due, state,
                           0 if waiting else 1, done, due)  # fmt: skip
    return outbox


@dataclass
class Loaded:
    """A data set ready to load, with its size and the staff to sign in."""

    rows: Dataset
    members: int
    staff: Staff


def generate(members: int, branches: int, today: dt.date) -> Loaded:
    """The year of `members` in `branches` branches, with the console's rows."""
    dataset = build_dataset(load_rules().points, members, branch_count=branches)
    staff = extend(dataset, today)
    return Loaded(dataset, members, staff)
