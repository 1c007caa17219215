"""The same-work peer of bench/webhook.py (case d′, bench/webhook_peer.py): it must answer
check-ins as Qiyi does, from the same rules, and answer a repeated MsgId once."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from bench.webhook_peer import CheckIns, build_robot, seed
from bot.channels.wechat_sample import signed_request
from bot.clock import FixedClock, unix_seconds
from tests.conftest import ROSTER, TOKEN, Chat, make_settings

OPENID = "account-1001"


@pytest.fixture
def peer_db(tmp_path: Path) -> str:
    path = str(tmp_path / "peer.sqlite3")
    seed(path, [(f"account-{row.member_id}", row.member_id, row.name) for row in ROSTER])
    return path


@pytest.fixture
def peer(peer_db: str, clock: FixedClock) -> CheckIns:
    return CheckIns(peer_db, now=clock.now)


def count(path: str, table: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_the_peer_says_what_qiyi_says(chat: Chat, peer: CheckIns, clock: FixedClock):
    """The same messages over eight days, to Qiyi and to the peer: the same replies — the
    day's total, the goal, the points (blocks, daily cap, goal and 7-day streak bonuses),
    the streak, the limits, the points card."""
    script = [
        ["今日", "积分", "学习 30", "学习 45", "今日", "这个怎么弄", "学习 45"],
        ["学习 120", "积分"],
        ["学习 60", "学习 60", "学习 30"],
        ["学习 240", "学习 241"],
        ["学习 200"],
        ["学习 125", "今日"],
        ["学习 119", "学习 1", "今日", "积分"],  # the 7th day at the goal: the streak bonus
        ["今日", *["学习 240"] * 6, "学习 1", "今日", "积分"],  # the day's 24 hours are full
    ]
    replies: dict[tuple[int, str], str] = {}
    for day, texts in enumerate(script):
        for text in texts:
            ours = await chat.say("1001", text)
            theirs = peer.answer(OPENID, uuid.uuid4().hex, text)
            assert theirs == ours, (day, text)
            replies[day, text] = theirs
        clock.advance(days=1)
    # The rules were exercised: the goal and the 7-day streak bonus, the limits.
    assert "连续达标：7 天" in replies[6, "学习 1"]
    assert "本次积分：+8" in replies[6, "学习 1"]  # 1 block, the goal's 2, the streak's 5
    assert "你写的是 241 分钟" in replies[3, "学习 241"]
    assert "超过 24 小时" in replies[7, "学习 1"]


async def test_a_repeated_msgid_is_answered_once(peer: CheckIns, peer_db: str):
    first = peer.answer(OPENID, "6000000000000000001", "学习 30")
    again = peer.answer(OPENID, "6000000000000000001", "学习 30")
    other_text = peer.answer(OPENID, "6000000000000000001", "学习 90")

    assert "已记录 30 分钟" in first and "本次积分：+1" in first
    assert again == first and other_text == first
    assert count(peer_db, "study_entry") == 1
    assert count(peer_db, "points_entry") == 1
    assert count(peer_db, "processed_message") == 1
    # A new MsgId is a new message.
    assert "今日累计：60/120" in peer.answer(OPENID, "6000000000000000002", "学习 30")
    assert count(peer_db, "study_entry") == 2


async def test_refused_and_unbound_change_nothing_but_the_kept_message(
    peer: CheckIns, peer_db: str
):
    assert "你写的是 241 分钟" in peer.answer(OPENID, "1", "学习 241")
    assert "绑定" in peer.answer("someone-else", "2", "学习 30")
    assert count(peer_db, "study_entry") == 0
    assert count(peer_db, "points_entry") == 0
    assert count(peer_db, "processed_message") == 2


async def test_the_werobot_app_answers_signed_messages_and_dedupes(peer_db: str, clock: FixedClock):
    """Through WeRoBot's WSGI app, as bjoern calls it: the signature checked, the reply
    XML, a retried MsgId answered with the first reply."""
    pytest.importorskip("werobot", reason="the bench extras: pip install -e '.[bench]'")
    import io
    from urllib.parse import urlencode

    robot = build_robot(TOKEN, peer_db, now=clock.now)
    settings = make_settings("sqlite+aiosqlite:///:memory:")

    def post(text: str, msg_id: int, *, token_ok: bool = True) -> tuple[str, str]:
        query, body = signed_request(settings, OPENID, text, unix_seconds(clock), msg_id)
        if not token_ok:
            query["signature"] = "0" * 40
        raw = body.encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/",
            "QUERY_STRING": urlencode(query),
            "CONTENT_TYPE": "text/xml",
            "CONTENT_LENGTH": str(len(raw)),
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(raw),
            "wsgi.errors": io.StringIO(),
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        statuses: list[str] = []
        chunks = robot.wsgi(environ, lambda status, _headers, *_: statuses.append(status))
        return statuses[0], b"".join(chunks).decode()

    status, reply = post("学习 30", 7001)
    assert status.startswith("200") and "已记录 30 分钟" in reply
    status, retried = post("学习 30", 7001)
    assert status.startswith("200") and "已记录 30 分钟" in retried
    assert "今日累计：60/120" in post("学习 30", 7002)[1]
    assert count(peer_db, "study_entry") == 2
    status, _ = post("学习 30", 7003, token_ok=False)
    assert status.startswith("403")
    assert count(peer_db, "study_entry") == 2
