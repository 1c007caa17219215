"""QQ group numbers are ASCII digits, checked where they come in (`qiyi groups set`) and again
where they are read (a row stored before the check fails only its own post).

Before, `qiyi groups set` took any `str.isdigit()` text — "²" passes it, and `int("²")`
raises — and created a branch for a mistyped name; the dispatcher's `int()` then aborted
every round, leaving the group posts leased, and they were posted again and again.
"""

# ruff: noqa: F401, F811 (the OneBot tests' fixtures are imported and used by name)
from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, func, select
from typer.testing import CliRunner

from bot.appkeys import ENGINE, SETTINGS
from bot.cli import app as cli_app
from bot.conversation import Conversation
from bot.messages import Sender
from bot.pushes import enqueue_article
from data import audit, members
from data.db import session_factory, transaction
from data.models import AuditEntry, Branch, BranchGroup, GroupPost, OutboxItem, PushKind
from tests.channels.test_onebot import Pushing, pushing, quiet_onebot, rows

GOOD_GROUP = 654321


def groups_set(database_url: str, *args: str) -> tuple[int, str]:
    """`qiyi groups set …` as an operator runs it: (exit code, what it printed)."""
    env = {"QIYI_DATABASE_URL": database_url, "QIYI_SCHEDULER": "off", "QIYI_WECHAT_TOKEN": ""}
    result = CliRunner().invoke(cli_app, ["groups", "set", *args], env=env)
    return result.exit_code, result.output


async def count(conversation: Conversation, model: type, *where: object) -> int:
    async with conversation.sessions() as session:
        statement = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int((await session.exec(statement)).one())


@pytest.mark.parametrize(
    "group_id",
    ["²", "١٢٣٤٥٦", "１２３４５６", "12a", "+123456", " 123456", "1" * 19, ""],
    ids=["superscript", "arabic-indic", "full-width", "letter", "sign", "space", "long", "empty"],
)
async def test_groups_set_refuses_a_group_id_that_is_not_ascii_digits(
    conversation: Conversation, database_url: str, group_id: str
) -> None:
    code, output = await asyncio.to_thread(groups_set, database_url, "第一党支部", group_id)

    assert code == 1
    assert len(output.strip().splitlines()) == 1
    assert "ASCII digits" in output
    assert await count(conversation, BranchGroup) == 0
    assert await count(conversation, AuditEntry) == 0


async def test_groups_set_refuses_an_unknown_branch_and_creates_none(
    conversation: Conversation, database_url: str
) -> None:
    branches = await count(conversation, Branch)

    code, output = await asyncio.to_thread(groups_set, database_url, "第一支部", "123456")

    assert code == 1
    assert output.strip().splitlines() == [
        "No branch named '第一支部' (the names are as in the roster)"
    ]
    assert await count(conversation, Branch) == branches
    assert await count(conversation, Branch, col(Branch.name) == "第一支部") == 0
    assert await count(conversation, BranchGroup) == 0
    assert await count(conversation, AuditEntry) == 0


async def test_groups_set_stores_the_group_and_audits_it(
    conversation: Conversation, database_url: str
) -> None:
    assert (await asyncio.to_thread(groups_set, database_url, "第一党支部", "123456"))[0] == 0
    assert (await asyncio.to_thread(groups_set, database_url, "第一党支部", "7654321"))[0] == 0

    async with conversation.sessions() as session:
        (group,) = await session.exec(select(BranchGroup))
        entries = list(await audit.entries(session, action="group.set"))
    assert (group.channel, group.group_id) == ("qq", "7654321")
    assert len(entries) == 2
    latest = entries[0]
    assert latest.door == "cli" and latest.actor.startswith("cli:")
    assert latest.branch_id == group.branch_id
    assert '"group_id": "7654321"' in latest.after
    assert '"123456"' in latest.before


async def test_a_stored_bad_group_id_fails_only_its_own_post(pushing: Pushing) -> None:
    app = pushing.onebot.app
    sessions = session_factory(app[ENGINE])
    clock = pushing.clock
    async with transaction(sessions) as session:
        by_name = {b.name: b.id for b in await session.exec(select(Branch))}
        # As `qiyi groups set` stored them before it checked: "²" passed str.isdigit().
        session.add(BranchGroup(branch_id=by_name["第一党支部"], channel="qq", group_id="²"))
        session.add(
            BranchGroup(branch_id=by_name["第二党支部"], channel="qq", group_id=str(GOOD_GROUP))
        )
        for qq, roster_id in ((12345678, "1001"), (22334455, "2001")):
            member = await members.member_by_roster_id(session, roster_id)
            assert member is not None
            await members.bind(session, Sender("qq", str(qq)), member, clock.now())
    async with transaction(sessions) as session:
        enqueued = await enqueue_article(session, app[SETTINGS], clock, PushKind.LESSON)
    assert enqueued.count == 2

    await pushing.dispatcher.run_once()

    posts = {post.group_id: post for post in await rows(pushing.onebot, GroupPost)}
    bad, good = posts["²"], posts[str(GOOD_GROUP)]
    assert (bad.state, bad.lease_until) == ("failed", None)
    assert "not a QQ group number" in bad.last_error
    assert good.state == "sent"
    assert [m.target for m in pushing.fake.group_messages()] == [GOOD_GROUP]
    # The branch whose group cannot be posted to gets the lesson privately instead.
    assert [m.target for m in pushing.fake.private_messages()] == [12345678]
    items = await rows(pushing.onebot, OutboxItem)
    assert sorted(item.state for item in items) == ["sent", "skipped"]
    assert await rows(pushing.onebot, GroupPost, col(GroupPost.state) == "sending") == []

    # Nothing is posted again once the lease would have run out.
    clock.advance(seconds=app[SETTINGS].delivery_lease_seconds + 1)
    await pushing.dispatcher.run_once()
    clock.advance(days=1)
    await pushing.dispatcher.run_once()
    assert len(pushing.fake.group_messages()) == 1
    assert len(pushing.fake.private_messages()) == 1
