"""Case (d′) of bench/webhook.py (`--cases d-same`): a hand-written bot doing the *same*
check-in work as Qiyi — WeRoBot on bjoern with plain `sqlite3`, one transaction a message.

Case (d) (`bench/webhook_werobot.py`) inserts a row and reads a total; this one does what a
Qiyi message does, statement for statement, so (b)/(d′) compares the product with a bot a
careful developer would write by hand for the same job:

1. the sender: the member behind the openid (binding joined to member), the push window
   and whether notices or pushes wait for them (Qiyi's first query, `data.members`);
   the window is written as Qiyi does, at most once a minute a member;
2. `学习 N` (1–240 minutes, Qiyi's per-entry range): the day so far (minutes and the study
   points already awarded, one query), refused past 24 hours a day (Qiyi's cap), the
   entry inserted, the day's study points by the product's rule (`study_points` for every
   `study_block_minutes`, at most `study_daily_cap` a day, the defaults of
   `content/rules.toml`) awarded into a points ledger with the same unique key, the
   streak (consecutive days at the daily goal), the goal and streak bonuses on the days
   they fall; `今日`: the day's minutes and the streak; `积分`: the points card (totals by
   source, lifelong and this month); anything else: the unknown-command answer;
3. the reply rendered from a template (jinja2, the texts of Qiyi's templates);
4. the MsgId kept with the reply (unique on channel and key), last: a retry of the same
   MsgId is rolled back and answered with the stored reply.

The tables carry the indexes Qiyi's have (`data/models.py`) for these statements; the
connection is opened as Qiyi's (`data/db.py`): WAL, synchronous=NORMAL, foreign keys on,
`BEGIN IMMEDIATE` for every message (SQLite's automatic WAL checkpoints stay on, at a
commit now and then, where Qiyi runs them in a thread: what a hand-written bot would do).
Days are the server's clock in Asia/Shanghai, as the product's `today`. Refused input
(`学习 241`, a full day) is answered in the message's transaction with nothing else written
(Qiyi rolls back and keeps the message with its answer in a second one).

Not part of the product: WeRoBot and bjoern are installed into the venv to be measured
against (`pip install -e ".[bench]"`; bjoern needs `apt-get install libev-dev`).

    .venv/bin/python -m bench.webhook_peer --db FILE --port PORT --token TOKEN
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import DictLoader, Environment, StrictUndefined

from bench.webhook_werobot import ThreadDatabase, serve
from bot.clock import SystemClock

ZONE = ZoneInfo("Asia/Shanghai")
CHANNEL = "wechat"
# Qiyi's defaults: QIYI_DAILY_GOAL_MINUTES, content/rules.toml's [points], handlers/study.py.
GOAL_MINUTES = 120
STUDY_BLOCK_MINUTES = 30
STUDY_POINTS = 1
STUDY_DAILY_CAP = 4
GOAL_BONUS = 2
STREAK_DAYS = 7
STREAK_BONUS = 5
ENTRY_MINUTES = range(1, 241)
DAY_MINUTES = 24 * 60
STREAK_HORIZON_DAYS = 3660
WINDOW = dt.timedelta(hours=48)  # WeChat's: 48 hours and 5 pushes after the member writes
WINDOW_BUDGET = 5
WINDOW_SLACK = dt.timedelta(minutes=1)
BUSY_TIMEOUT_S = 15
CHECK_IN = re.compile(r"^(?:学习|打卡)\s*(\d{1,4})\s*(?:分钟)?\s*(.{0,200})$", re.DOTALL)

# Qiyi's tables for this work, with their indexes (data/models.py), in plain SQL.
SCHEMA = """
CREATE TABLE IF NOT EXISTS member (
    id INTEGER PRIMARY KEY,
    roster_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    joined_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS binding (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    member_id INTEGER NOT NULL REFERENCES member(id),
    window_until TEXT,
    window_budget INTEGER NOT NULL DEFAULT 0,
    window_used INTEGER NOT NULL DEFAULT 0,
    UNIQUE (channel, external_id),
    UNIQUE (channel, member_id)
);
CREATE INDEX IF NOT EXISTS ix_binding_member_id ON binding (member_id);
CREATE TABLE IF NOT EXISTS mailbox_item (
    id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES member(id),
    text TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS ix_mailboxitem_member_open ON mailbox_item (member_id, delivered_at);
CREATE TABLE IF NOT EXISTS outbox_item (
    id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES member(id),
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_outboxitem_member_state ON outbox_item (member_id, state);
CREATE TABLE IF NOT EXISTS study_entry (
    id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES member(id),
    day TEXT NOT NULL,
    minutes INTEGER NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL,
    activity_id INTEGER
);
CREATE INDEX IF NOT EXISTS ix_studyentry_member_day ON study_entry (member_id, day);
CREATE UNIQUE INDEX IF NOT EXISTS ux_studyentry_member_activity
    ON study_entry (member_id, activity_id);
CREATE INDEX IF NOT EXISTS ix_studyentry_day_member ON study_entry (day, member_id, minutes);
CREATE TABLE IF NOT EXISTS points_entry (
    id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES member(id),
    points INTEGER NOT NULL,
    source TEXT NOT NULL,
    ref TEXT NOT NULL,
    reason TEXT NOT NULL,
    day TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (member_id, source, ref)
);
CREATE INDEX IF NOT EXISTS ix_pointsentry_member_day ON points_entry (member_id, day);
CREATE INDEX IF NOT EXISTS ix_pointsentry_day ON points_entry (day);
CREATE TABLE IF NOT EXISTS processed_message (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    key TEXT NOT NULL,
    reply TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (channel, key)
);
CREATE INDEX IF NOT EXISTS ix_processedmessage_created_at ON processed_message (created_at);
"""

SENDER = """
SELECT m.id, m.name, b.id, b.window_until, b.window_budget, b.window_used,
       EXISTS (SELECT 1 FROM mailbox_item WHERE member_id = m.id AND delivered_at IS NULL)
       OR EXISTS (SELECT 1 FROM outbox_item WHERE member_id = m.id AND state = 'pending')
FROM binding AS b JOIN member AS m ON m.id = b.member_id
WHERE b.channel = ? AND b.external_id = ?
"""
OPEN_WINDOW = "UPDATE binding SET window_until = ?, window_budget = ?, window_used = 0 WHERE id = ?"
DAY_SO_FAR = """
SELECT (SELECT COALESCE(SUM(minutes), 0) FROM study_entry WHERE member_id = ? AND day = ?),
       (SELECT COALESCE(SUM(points), 0) FROM points_entry
        WHERE member_id = ? AND source = 'study' AND day = ?)
"""
MINUTES_ON = "SELECT COALESCE(SUM(minutes), 0) FROM study_entry WHERE member_id = ? AND day = ?"
ADD_ENTRY = """
INSERT INTO study_entry (member_id, day, minutes, note, created_at) VALUES (?, ?, ?, ?, ?)
"""
AWARD = """
INSERT INTO points_entry (member_id, points, source, ref, reason, day, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (member_id, source, ref) DO NOTHING
"""
GOAL_DAYS = """
SELECT day FROM study_entry WHERE member_id = ? AND day <= ? AND day > ?
GROUP BY day HAVING SUM(minutes) >= ? ORDER BY day DESC
"""
CARD = """
SELECT source, SUM(points), COALESCE(SUM(CASE WHEN day >= ? THEN points ELSE 0 END), 0)
FROM points_entry WHERE member_id = ? GROUP BY source
"""
KEEP_MESSAGE = """
INSERT INTO processed_message (channel, key, reply, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (channel, key) DO NOTHING
"""
STORED_REPLY = "SELECT reply FROM processed_message WHERE channel = ? AND key = ?"

# The texts of Qiyi's templates (content/templates/), for the same replies.
TEMPLATES = {
    "study_recorded": (
        "已记录 {{ added }} 分钟。\n今日累计：{{ minutes }}/{{ goal }} 分钟\n"
        "{% if minutes >= goal %}\n已达成每日学习目标！\n{% else %}\n"
        "还差 {{ goal - minutes }} 分钟达标。\n{% endif %}\n"
        "连续达标：{{ streak }} 天\n本次积分：+{{ gained }}\n"
    ),
    "study_today": (
        "今日学习：{{ minutes }}/{{ goal }} 分钟\n{% if remaining %}\n"
        "还差 {{ remaining }} 分钟达标，加油！\n{% else %}\n今日已达标！\n{% endif %}\n"
        "连续达标：{{ streak }} 天\n"
    ),
    "points_card": (
        '{% set labels = {"study": "学习", "goal": "每日达标", "streak": "连续达标"} %}\n'
        "【{{ name }}的积分卡】\n累计积分：{{ total }}\n本月积分：{{ month }}\n"
        "{% if sources %}\n积分来源：\n"
        '{% for source, amount in sources | dictsort(by="value", reverse=true) %}\n'
        "· {{ labels.get(source, source) }}：{{ amount }}\n{% endfor %}\n{% else %}\n"
        "还没有积分，发送“学习 30”开始积累吧！\n{% endif %}\n"
    ),
    "ledger_reason": (
        '{% if source == "study" %}{{ day }} 学习累计 {{ minutes }} 分钟\n'
        '{% elif source == "goal" %}{{ day }} 学习达标（{{ minutes }} 分钟）\n'
        '{% elif source == "streak" %}{{ day }} 连续达标 {{ streak }} 天\n{% endif %}\n'
    ),
    "study_range": (
        "每次可记录 1 到 240 分钟（你写的是 {{ minutes }} 分钟），多段学习请分次记录。\n"
        "用法：学习 <时长> [备注]"
    ),
    "study_day_full": (
        "这一天已记录 {{ recorded }} 分钟，再加就超过 24 小时了，请核对。\n用法：学习 <时长> [备注]"
    ),
    "unknown": "没看懂这条消息。发送“帮助”查看可用指令。",
    "bind_prompt": "请先绑定：发送“绑定 工号 姓名”。",
}
TEXTS = Environment(
    loader=DictLoader(TEMPLATES),
    autoescape=False,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def render(template: str, /, **context: Any) -> str:
    return TEXTS.get_template(template).render(**context).strip()


def connect(path: str) -> sqlite3.Connection:
    """A connection opened as Qiyi opens its own (data/db.py): transactions by hand."""
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def seed(path: str, members: Iterable[tuple[str, str, str]]) -> None:
    """Create the tables and the bound members: (openid, roster id, name) rows."""
    connection = connect(path)
    joined = SystemClock(ZONE).now().isoformat()
    try:
        connection.executescript(SCHEMA)
        connection.execute("BEGIN")
        for openid, roster_id, name in members:
            cursor = connection.execute(
                "INSERT INTO member (roster_id, name, joined_at) VALUES (?, ?, ?)",
                (roster_id, name, joined),
            )
            connection.execute(
                "INSERT INTO binding (channel, external_id, member_id) VALUES (?, ?, ?)",
                (CHANNEL, openid, cursor.lastrowid),
            )
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
    finally:
        connection.close()


@dataclass(frozen=True)
class Sender:
    member_id: int
    name: str
    binding_id: int
    window_until: str | None
    window_budget: int
    window_used: int
    waiting: bool


class CheckIns(ThreadDatabase):
    """The bot's work on one sqlite3 connection per server thread (bjoern has one)."""

    def __init__(self, path: str, now: Callable[[], dt.datetime] | None = None) -> None:
        super().__init__(path, connect)
        self.now = now or SystemClock(ZONE).now

    def answer(self, openid: str, msg_id: str, text: str) -> str:
        """The reply to one text message, in one transaction; a repeated MsgId gets the
        reply stored the first time, and changes nothing."""
        db = self.db
        now = self.now()
        db.execute("BEGIN IMMEDIATE")
        try:
            reply = self._reply(db, openid, text.strip(), now)
            kept = db.execute(KEEP_MESSAGE, (CHANNEL, msg_id, reply, now.isoformat()))
            if kept.rowcount == 1:
                db.execute("COMMIT")
                return reply
            db.execute("ROLLBACK")  # a retry: the first time's work stands, this one's goes
        except BaseException:
            db.execute("ROLLBACK")
            raise
        row = db.execute(STORED_REPLY, (CHANNEL, msg_id)).fetchone()
        return str(row[0]) if row else ""

    def _reply(self, db: sqlite3.Connection, openid: str, text: str, now: dt.datetime) -> str:
        found = db.execute(SENDER, (CHANNEL, openid)).fetchone()
        if found is None:
            return render("bind_prompt")
        sender = Sender(*found)
        self._open_window(db, sender, now)
        today = now.date()
        matched = CHECK_IN.match(text)
        if matched:
            return self._check_in(db, sender, int(matched.group(1)), matched.group(2), now)
        if text in ("今日", "进度"):
            found = db.execute(MINUTES_ON, (sender.member_id, today.isoformat())).fetchone()
            minutes = int(found[0])
            streak = self._streak(db, sender.member_id, today)
            remaining = max(0, GOAL_MINUTES - minutes)
            facts = {"minutes": minutes, "remaining": remaining, "streak": streak}
            return render("study_today", goal=GOAL_MINUTES, **facts)
        if text == "积分":
            since = today.replace(day=1).isoformat()
            rows = db.execute(CARD, (since, sender.member_id)).fetchall()
            sources = {source: int(total) for source, total, _ in rows}
            month = sum(int(recent) for _, _, recent in rows)
            total = sum(sources.values())
            card = {"total": total, "month": month, "sources": sources}
            return render("points_card", name=sender.name, **card)
        return render("unknown")

    def _open_window(self, db: sqlite3.Connection, sender: Sender, now: dt.datetime) -> None:
        """Qiyi's rule (`data.members.open_window`): written unless opened within a minute."""
        until = now + WINDOW
        current = dt.datetime.fromisoformat(sender.window_until) if sender.window_until else None
        if current is not None and current > until and sender.window_used < sender.window_budget:
            return
        recent = current is not None and current >= until - WINDOW_SLACK
        if recent and (sender.window_budget, sender.window_used) == (WINDOW_BUDGET, 0):
            return
        db.execute(OPEN_WINDOW, (until.isoformat(), WINDOW_BUDGET, sender.binding_id))

    def _check_in(
        self, db: sqlite3.Connection, sender: Sender, added: int, note: str, now: dt.datetime
    ) -> str:
        if added not in ENTRY_MINUTES:
            return render("study_range", minutes=added)
        member_id, day = sender.member_id, now.date()
        before_minutes, before_points = db.execute(
            DAY_SO_FAR, (member_id, day.isoformat(), member_id, day.isoformat())
        ).fetchone()
        if before_minutes + added > DAY_MINUTES:
            return render("study_day_full", recorded=before_minutes)
        entry = db.execute(ADD_ENTRY, (member_id, day.isoformat(), added, note, now.isoformat()))
        minutes = before_minutes + added
        owed = min(STUDY_DAILY_CAP, minutes // STUDY_BLOCK_MINUTES * STUDY_POINTS)
        reason = {"minutes": minutes}
        ref = f"study:{entry.lastrowid}"
        gained = self._award(db, member_id, owed - before_points, "study", ref, day, now, reason)
        streak = self._streak(db, member_id, day)
        if minutes >= GOAL_MINUTES:
            ref = f"goal:{day}"
            gained += self._award(db, member_id, GOAL_BONUS, "goal", ref, day, now, reason)
            if streak and not streak % STREAK_DAYS:
                ref, bonus = f"streak:{day}", STREAK_BONUS
                gained += self._award(
                    db, member_id, bonus, "streak", ref, day, now, {"streak": streak}
                )
        return render(
            "study_recorded",
            added=added,
            minutes=minutes,
            goal=GOAL_MINUTES,
            streak=streak,
            gained=gained,
        )

    def _award(
        self,
        db: sqlite3.Connection,
        member_id: int,
        points: int,
        source: str,
        ref: str,
        day: dt.date,
        now: dt.datetime,
        reason: dict[str, int],
    ) -> int:
        """Points into the ledger once per (member, source, ref); the points awarded."""
        if points <= 0:
            return 0
        text = render("ledger_reason", source=source, day=day, **reason)[:200]
        row = (member_id, points, source, ref, text, day.isoformat(), now.isoformat())
        return points if db.execute(AWARD, row).rowcount == 1 else 0

    def _streak(self, db: sqlite3.Connection, member_id: int, day: dt.date) -> int:
        """Consecutive days at the goal ending on `day`, or the day before when it is short."""
        horizon = day - dt.timedelta(days=STREAK_HORIZON_DAYS)
        params = (member_id, day.isoformat(), horizon.isoformat(), GOAL_MINUTES)
        days = [dt.date.fromisoformat(row[0]) for row in db.execute(GOAL_DAYS, params)]
        expected = day if days and days[0] == day else day - dt.timedelta(days=1)
        streak = 0
        for goal_day in days:
            if goal_day != expected:
                break
            streak += 1
            expected -= dt.timedelta(days=1)
        return streak


def build_robot(
    token: str,
    db_path: str,
    aes_key: str | None = None,
    appid: str | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> Any:
    """The WeRoBot app with its one text handler; safe mode when given the AES key."""
    from werobot import WeRoBot  # imported here: only the server process needs it

    # SESSION_STORAGE=False: the handler keeps no WeRoBot session (Qiyi keeps none either).
    robot = WeRoBot(token=token, SESSION_STORAGE=False, APP_ID=appid, ENCODING_AES_KEY=aes_key)
    check_ins = CheckIns(db_path, now)

    @robot.text  # type: ignore[misc]
    def answer(message: Any) -> str:
        return check_ins.answer(str(message.source), str(message.message_id), message.content)

    return robot


def main(argv: list[str] | None = None) -> None:
    serve("python -m bench.webhook_peer", build_robot, argv)


if __name__ == "__main__":
    main()
