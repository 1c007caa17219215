"""`排行` and `我的月报` never score the whole organisation on the event loop per message: the
month's standings are computed in a worker thread (its own loop, a read-only engine), one
computation at a time, kept for `standings_max_age_seconds`, and dated in the replies."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

import bot.reports.standings as standings_module
from bot.reports.bulletins import month_report
from bot.reports.periods import PeriodKind, ReportPeriod
from bot.reports.standings import Standings, in_a_thread
from data import figures, migrate
from data.db import create_engine, create_reader, run, session_factory, transaction
from data.figures import Period
from data.models import Member
from tests.conftest import MORNING, Chat

ORGANISATION_TABLES = ("studyentry", "pointsentry")


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine runs, in any thread, while the test runs."""
    found: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        found.append(" ".join(sql.split()).lower())

    event.listen(Engine, "before_cursor_execute", record)
    yield found
    event.remove(Engine, "before_cursor_execute", record)


def figures_queries(found: list[str]) -> list[str]:
    return [sql for sql in found if any(f"from {t}" in sql for t in ORGANISATION_TABLES)]


async def test_a_second_ranking_in_the_window_is_not_computed_again(
    chat: Chat, statements: list[str]
) -> None:
    clock = chat.conversation.clock
    standings = chat.conversation.standings
    await chat.say("1001", "学习 60")
    await chat.say("1002", "学习 30")

    statements.clear()
    first = await chat.say("1001", "排行")
    assert "1. 张三 2分" in first and "2. 李四 1分" in first
    assert standings.computations == 1
    # Computed in the helper process: this one ran none of the month's aggregates.
    assert figures_queries(statements) == []

    await chat.say("1002", "学习 60")  # 李四 now has 3 points
    clock.advance(minutes=4)
    second = await chat.say("1001", "排行")
    assert second == first  # the kept standings, with their time
    assert "（截至25日 09:00）" in second
    assert standings.computations == 1

    clock.advance(minutes=1)  # 5 minutes old: computed again
    statements.clear()
    third = await chat.say("1001", "排行")
    assert "1. 李四 3分" in third and "2. 张三 2分" in third
    assert "（截至25日 09:05）" in third
    assert standings.computations == 2
    assert figures_queries(statements) == []


async def test_my_report_reads_only_my_rows_and_the_kept_standings(
    chat: Chat, statements: list[str]
) -> None:
    await chat.say("1001", "学习 60")
    await chat.say("1001", "排行")  # the standings are computed and kept
    await chat.say("1001", "学习 60")  # 2 more points, after the standings were computed

    statements.clear()
    reply = await chat.say("1001", "我的月报")

    queries = figures_queries(statements)
    assert queries  # my own figures, up to this message …
    assert all("member_id = " in sql for sql in queries)  # … each of my rows only
    assert "积分：6，支部第 1/3 名（名次截至 09:00）" in reply  # 2 + 2 + the goal's 2
    assert chat.conversation.standings.computations == 1


async def test_concurrent_rankings_share_one_computation(chat: Chat) -> None:
    await chat.say("2001", "学习 30")
    replies = await asyncio.gather(*(chat.say(r, "排行") for r in ("1001", "1002", "2001")))
    assert chat.conversation.standings.computations == 1
    assert all("【11月排行】（截至25日 09:00）" in reply for reply in replies)


async def test_a_computation_in_progress_holds_nothing_a_check_in_needs(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The computation (here in a thread of this process, where the test can hold it) is held
    with its read transaction open until a check-in has been answered: it runs off the loop
    and locks nothing the message path needs."""
    loop_thread = threading.get_ident()
    computed = threading.Event()
    release = threading.Event()
    seen: dict[str, Any] = {}
    real_month_report = month_report

    async def held_month_report(*args: Any, **kwargs: Any) -> Any:
        report = await real_month_report(*args, **kwargs)
        seen["thread"] = threading.get_ident()
        computed.set()
        # Blocks this thread (and its own event loop) only; the session stays open.
        seen["released"] = release.wait(timeout=60)
        return report

    monkeypatch.setattr(standings_module, "month_report", held_month_report)
    conversation = chat.conversation
    url = conversation.sessions.kw["bind"].url.render_as_string(hide_password=False)
    compute = in_a_thread(url, conversation.report_context)
    conversation.standings = Standings(conversation.clock, compute, wait=120)
    await chat.say("1001", "学习 60")

    ranking = asyncio.create_task(chat.say("1001", "排行"))
    assert await asyncio.to_thread(computed.wait, 60)

    check_in = await chat.say("1002", "学习 30")  # answered while the computation is held
    assert "已记录" in check_in
    assert not ranking.done()
    release.set()

    reply = await ranking
    assert seen["released"] is True  # released by the test, after the check-in
    assert seen["thread"] != loop_thread
    assert "1. 张三 2分" in reply


async def test_check_ins_go_on_while_the_helper_process_computes(chat: Chat) -> None:
    """PostgreSQL: the helper's read is held by a lock on a table only it reads (materials)
    until a check-in has been answered."""
    engine = chat.conversation.sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("a table lock that holds a reader: PostgreSQL")
    chat.conversation.standings.wait = 120
    await chat.say("1001", "学习 60")
    async with engine.connect() as locker:
        await locker.execute(text("LOCK TABLE material IN ACCESS EXCLUSIVE MODE"))
        ranking = asyncio.create_task(chat.say("1001", "排行"))
        async with engine.connect() as watcher:
            waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            # Polled: the helper is another process, nothing here can signal it.
            while not (await watcher.execute(waiting)).scalar_one():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert "已记录" in await chat.say("1002", "学习 30")
        assert not ranking.done()
        await locker.commit()
    reply = await ranking
    assert "1. 张三 2分" in reply and "2. 李四 1分" not in reply  # its snapshot: before


async def test_a_slow_computation_is_answered_with_older_standings_or_a_retry(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = chat.conversation
    release = threading.Event()
    real_month_report = month_report

    async def held_month_report(*args: Any, **kwargs: Any) -> Any:
        release.wait(timeout=60)
        return await real_month_report(*args, **kwargs)

    monkeypatch.setattr(standings_module, "month_report", held_month_report)
    conversation.standings.wait = 0  # no waiting at all for a computation
    try:
        assert await chat.say("1001", "排行") == "本月排行正在统计，请稍后再发送“排行”。"
        assert "支部名次正在统计" in await chat.say("1001", "我的月报")
    finally:
        release.set()
    conversation.standings.wait = 60
    conversation.clock.advance(minutes=1)
    assert "（截至25日 09:00）" in await chat.say("1001", "排行")  # the one started first

    conversation.clock.advance(minutes=10)  # stale; its successor is held again
    release.clear()
    conversation.standings.wait = 0
    try:
        # Answered at once with the month's older standings, dated as what they are.
        assert "（截至25日 09:00）" in await chat.say("1001", "排行")
    finally:
        release.set()


async def test_standings_equal_the_month_report(chat: Chat) -> None:
    await chat.say("1001", "学习 60")
    await chat.say("1002", "学习 60")
    await chat.say("1003", "学习 30")
    await chat.say("2001", "学习 120")
    await chat.say("1001", "排行")
    standings = chat.conversation.standings.latest
    assert standings is not None

    month = ReportPeriod(PeriodKind.MONTH, 2026, 11)
    async with chat.conversation.sessions() as session:
        report = await month_report(
            session, month, chat.conversation.report_context, MORNING.date()
        )

    assert [(b.branch, b.score, b.rank, b.parts) for b in standings.branches] == [
        (b.branch, b.score, b.rank, b.parts) for b in report.branches
    ]
    for person in report.members:
        place = standings.place(person.member_id)
        assert place is not None
        branch = [m for m in report.members if m.branch_id == person.branch_id]
        assert place.points == person.points
        assert place.of == len(branch)
        assert place.rank == 1 + sum(1 for m in branch if m.points > person.points)


async def test_standings_of_another_month_are_not_served(chat: Chat) -> None:
    clock = chat.conversation.clock
    clock.set(dt.datetime(2026, 10, 31, 23, 58, tzinfo=MORNING.tzinfo))
    assert "【10月排行】" in await chat.say("1001", "排行")
    clock.set(dt.datetime(2026, 11, 1, 0, 1, tzinfo=MORNING.tzinfo))
    assert "【11月排行】（截至1日 00:01）" in await chat.say("1001", "排行")


# --- the reader: no write lock, no writes --------------------------------------------------


async def test_an_open_read_does_not_hold_up_a_writer(sqlite_url: str) -> None:
    writer = create_engine(sqlite_url, inline=True)
    reader = create_reader(sqlite_url)
    try:
        await migrate.upgrade(writer)
        async with reader.connect() as connection:
            await connection.execute(text("SELECT count(*) FROM member"))
            # The read transaction is open: a writer begins and commits at once (with the
            # write lock taken at BEGIN, it would wait for SQLite's 15 s busy timeout).
            async with asyncio.timeout(5), transaction(session_factory(writer)) as session:
                await run(session, text("INSERT INTO branch (name) VALUES ('新支部')"))
            with pytest.raises(OperationalError, match="readonly"):
                await connection.execute(text("DELETE FROM branch"))
    finally:
        await reader.dispose()
        await writer.dispose()


async def test_one_member_s_figures_equal_everyone_s(chat: Chat) -> None:
    """`我的月报`'s own figures (three statements of the member's rows) are those of the
    month's report for that member."""
    conversation = chat.conversation
    clock = conversation.clock
    for day, roster_id, text_ in (
        (3, "1001", "学习 120"),
        (4, "1001", "学习 130"),
        (5, "1001", "学习 30"),
        (6, "1002", "学习 120"),
        (24, "2001", "笔记 " + "学" * 900),
    ):
        clock.set(dt.datetime(2026, 11, day, 9, 0, tzinfo=MORNING.tzinfo))
        await chat.say(roster_id, text_)
    clock.set(MORNING)
    await chat.say("1001", "微党课")
    await chat.say("1001", "答 A")
    entry = await chat.say("1002", "志愿 2 社区服务")
    await chat.say("1003", f"通过 {entry.split('编号 ')[1].split('）')[0]}")

    context = conversation.report_context
    span = Period(MORNING.date().replace(day=1), MORNING.date())
    chars = context.rules.points.article_min_chars
    async with conversation.sessions() as session:
        everyone = await figures.member_figures(session, span, context.zone, context.goal, chars)
        for member_id, expected in everyone.items():
            member = await session.get(Member, member_id)
            assert member is not None
            one = await figures.one_member(session, member, span, context.zone, context.goal, chars)
            assert dataclasses.replace(one, branch=expected.branch) == expected
