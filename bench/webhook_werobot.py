"""Case (d) of bench/webhook.py: the check-in flow written the way most WeChat bots are
written today — WeRoBot (from PyPI), a handler per message, a sqlite3 write per check-in,
run with WeRoBot's own server (`robot.run(server=…)`, i.e. bottle's server adapters).

Not part of the product: WeRoBot is installed into the venv only to be measured against
(`.venv/bin/pip install werobot bjoern`). The roster is seeded by `seed()` (called by the
benchmark before the server starts); the server is started as

    .venv/bin/python -m bench.webhook_werobot --db FILE --port PORT --server bjoern

It answers `学习 N` (a row inserted and committed, then today's total read back), `今日`
(today's total), `积分` (points from the study days, by the same per-day rule as the
product's defaults) and anything else with a pointer to `帮助`; unbound senders get the
binding prompt. The day is the message's CreateTime in Asia/Shanghai.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")
GOAL_MINUTES = 120
CHECK_IN = re.compile(r"^\s*学习\s*(\d{1,3})\s*(?:分钟)?\s*$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS member (
    openid TEXT PRIMARY KEY,
    member_id TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS study (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    openid TEXT NOT NULL REFERENCES member(openid),
    day TEXT NOT NULL,
    minutes INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS study_openid_day ON study (openid, day);
"""

POINTS_SQL = """
SELECT COALESCE(SUM(MIN(4, total / 30) + CASE WHEN total >= ? THEN 2 ELSE 0 END), 0)
FROM (SELECT SUM(minutes) AS total FROM study WHERE openid = ? GROUP BY day)
"""


def connect(path: str) -> sqlite3.Connection:
    """A connection as a careful sqlite3 bot would open it: WAL, normal sync, busy wait."""
    connection = sqlite3.connect(path, timeout=15)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def seed(path: str, members: Iterable[tuple[str, str, str]]) -> None:
    """Create the tables and the bound members: (openid, member_id, name) rows."""
    connection = connect(path)
    try:
        connection.executescript(SCHEMA)
        connection.executemany("INSERT INTO member VALUES (?, ?, ?)", list(members))
        connection.commit()
    finally:
        connection.close()


class ThreadDatabase:
    """One sqlite3 connection per server thread (bjoern and gunicorn's sync worker use one
    thread; waitress uses several), opened by `connect` on the thread's first use."""

    def __init__(self, path: str, connect: Callable[[str], sqlite3.Connection]) -> None:
        self.path = path
        self.connect = connect
        self.local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.connect(self.path)
            self.local.connection = connection
        return connection


class Store(ThreadDatabase):
    """The check-in's rows, on the server thread's connection."""

    def __init__(self, path: str) -> None:
        super().__init__(path, connect)

    def member(self, openid: str) -> tuple[str, str] | None:
        row = self.db.execute(
            "SELECT member_id, name FROM member WHERE openid = ?", (openid,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def today_minutes(self, openid: str, day: str) -> int:
        row = self.db.execute(
            "SELECT COALESCE(SUM(minutes), 0) FROM study WHERE openid = ? AND day = ?",
            (openid, day),
        ).fetchone()
        return int(row[0])

    def check_in(self, openid: str, day: str, minutes: int, created: int) -> int:
        """Insert and commit the row, then read back today's total."""
        db = self.db
        db.execute(
            "INSERT INTO study (openid, day, minutes, created) VALUES (?, ?, ?, ?)",
            (openid, day, minutes, created),
        )
        db.commit()
        return self.today_minutes(openid, day)

    def points(self, openid: str) -> int:
        return int(self.db.execute(POINTS_SQL, (GOAL_MINUTES, openid)).fetchone()[0])


def build_robot(
    token: str, db_path: str, aes_key: str | None = None, appid: str | None = None
) -> Any:
    """The WeRoBot app with its one text handler; safe mode when given the AES key."""
    from werobot import WeRoBot  # imported here: only the server process needs it

    # SESSION_STORAGE=False: WeRoBot's default would also read and write a session row in
    # werobot_session.sqlite3 on every message; the handler keeps no session, so this
    # leaves WeRoBot the cheaper path.
    robot = WeRoBot(token=token, SESSION_STORAGE=False, APP_ID=appid, ENCODING_AES_KEY=aes_key)
    store = Store(db_path)

    @robot.text  # type: ignore[misc]
    def answer(message: Any) -> str:
        openid = str(message.source)
        if store.member(openid) is None:
            return "请先绑定：发送“绑定 工号 姓名”。"
        created = int(message.time)
        day = dt.datetime.fromtimestamp(created, ZONE).date().isoformat()
        text = str(message.content or "").strip()
        matched = CHECK_IN.match(text)
        if matched:
            minutes = int(matched.group(1))
            if not 1 <= minutes <= 240:
                return "用法：学习 分钟数（1–240）"
            total = store.check_in(openid, day, minutes, created)
            return f"已记录学习 {minutes} 分钟。今日累计 {total}/{GOAL_MINUTES} 分钟。"
        if text == "今日":
            total = store.today_minutes(openid, day)
            left = max(0, GOAL_MINUTES - total)
            return f"今日已学习 {total} 分钟，距目标还差 {left} 分钟。"
        if text == "积分":
            return f"你的积分：{store.points(openid)} 分。"
        return "没看懂这条消息。发送“帮助”查看可用指令。"

    return robot


# What a WeRoBot case's server is built from: the token, the sqlite3 file, and safe mode's
# EncodingAESKey and AppID (None: plain mode).
RobotBuilder = Callable[[str, str, str | None, str | None], Any]


def serve(prog: str, build: RobotBuilder, argv: list[str] | None = None) -> None:
    """A WeRoBot case's server as bench/webhook.py starts it: the robot `build` makes on
    the seeded sqlite3 file, run with a bottle server adapter until it is stopped."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--db", required=True, help="the sqlite3 file, seeded already")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", required=True)
    parser.add_argument("--server", default="bjoern", help="a bottle server adapter name")
    parser.add_argument("--aes-key", help="EncodingAESKey: safe mode")
    parser.add_argument("--appid", help="AppID (safe mode)")
    args = parser.parse_args(argv)
    if not Path(args.db).exists():
        parser.error(f"--db {args.db}: not found (seed it first)")
    robot = build(args.token, args.db, args.aes_key, args.appid)
    robot.run(server=args.server, host=args.host, port=args.port, enable_pretty_logging=False)


def main(argv: list[str] | None = None) -> None:
    serve("python -m bench.webhook_werobot", build_robot, argv)


if __name__ == "__main__":
    main()
