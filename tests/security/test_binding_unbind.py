"""解绑: a member their own accounts, a secretary their branch's members, an admin anyone's;
every unbinding audited; afterwards the member can bind a new account."""

from __future__ import annotations

import json

import pytest

from bot.conversation import Conversation
from bot.messages import Sender
from content.texts import render
from tests.conftest import Chat
from tests.security.binding_helpers import (
    audit_rows,
    bind_directly,
    bound_to,
    channels_of,
    issue_code,
    member,
    say_as,
)

WECHAT = Sender("wechat", "o-1001")
QQ = Sender("qq", "10001")


@pytest.fixture
async def both(conversation: Conversation) -> Conversation:
    """Member 1001 bound on WeChat and QQ."""
    await bind_directly(conversation, WECHAT, "1001")
    await bind_directly(conversation, QQ, "1001")
    return conversation


async def test_a_member_unbinds_another_of_their_accounts(both: Conversation) -> None:
    reply = await say_as(both, WECHAT, "解绑 QQ")

    assert reply == "已解除您在QQ上的绑定。"
    assert await channels_of(both, "1001") == ["wechat"]
    assert await bound_to(both, QQ) is None
    [row] = await audit_rows(both, "member.unbind")
    found = await member(both, "1001")
    assert (row.door, row.origin, row.actor_id, row.object_id) == (
        "chat",
        "wechat",
        found.id,
        "1001",
    )
    assert json.loads(row.before) == {"channels": ["qq", "wechat"]}
    assert json.loads(row.after) == {"channels": ["wechat"]}


@pytest.mark.parametrize("typed", ["微信", "wechat", "ＷＥＣＨＡＴ"])
async def test_a_member_unbinds_the_account_they_write_from(both: Conversation, typed: str) -> None:
    assert await say_as(both, WECHAT, f"解绑 {typed}") == "已解除您在微信上的绑定。"
    assert await bound_to(both, WECHAT) is None
    # The account is a stranger now.
    assert "您还没有绑定身份" in await say_as(both, WECHAT, "今日")


async def test_after_unbinding_the_member_can_bind_a_new_account(both: Conversation) -> None:
    await say_as(both, QQ, "解绑 微信")
    code = await issue_code(both, "1001")
    new_phone = Sender("wechat", "o-new-phone")

    assert "绑定成功" in await say_as(both, new_phone, f"绑定 1001 {code}")
    assert await bound_to(both, new_phone) == "1001"


async def test_unbinding_a_channel_without_a_binding_changes_nothing(
    conversation: Conversation,
) -> None:
    await bind_directly(conversation, WECHAT, "1001")
    assert await say_as(conversation, WECHAT, "解绑 QQ") == "您在QQ上没有绑定账号。"
    assert await channels_of(conversation, "1001") == ["wechat"]
    assert await audit_rows(conversation, "member.unbind") == []


@pytest.mark.parametrize("text", ["解绑", "解绑 短信", "解绑 微信 QQ", "解绑 1001 短信"])
async def test_malformed_unbind_gives_usage(both: Conversation, text: str) -> None:
    reply = await say_as(both, WECHAT, text)
    assert "用法：解绑 <渠道>" in reply
    assert await channels_of(both, "1001") == ["qq", "wechat"]


async def test_a_stranger_is_asked_to_bind(conversation: Conversation) -> None:
    reply = await say_as(conversation, Sender("wechat", "o-x"), "解绑 微信")
    assert "您还没有绑定身份" in reply


# --- staff --------------------------------------------------------------------------------


async def test_a_secretary_unbinds_a_member_of_their_branch(both: Conversation) -> None:
    secretary = Sender("wechat", "o-1003")
    await bind_directly(both, secretary, "1003")

    reply = await say_as(both, secretary, "解绑 1001 QQ")

    assert reply == "已解除 张三（1001）在QQ上的绑定。"
    assert await channels_of(both, "1001") == ["wechat"]
    [row] = await audit_rows(both, "member.unbind")
    assert (row.actor, row.door, row.object_id) == ("王芳（1003）", "chat", "1001")
    # Without a channel: every binding.
    assert await say_as(both, secretary, "解绑 1001") == "已解除 张三（1001）在微信上的绑定。"
    assert await channels_of(both, "1001") == []


async def test_another_branchs_secretary_is_answered_as_if_the_member_did_not_exist(
    both: Conversation,
) -> None:
    secretary = Sender("wechat", "o-2002")  # 第二党支部
    await bind_directly(both, secretary, "2002")

    reply = await say_as(both, secretary, "解绑 1001")
    unknown = await say_as(both, secretary, "解绑 7777")

    assert reply == render("unbind_not_found", roster_id="1001")
    assert unknown == render("unbind_not_found", roster_id="7777")
    assert await channels_of(both, "1001") == ["qq", "wechat"]
    assert await audit_rows(both, "member.unbind") == []


async def test_an_admin_unbinds_anyone(both: Conversation) -> None:
    admin = Sender("wechat", "o-9001")
    await bind_directly(both, admin, "9001")
    assert await say_as(both, admin, "解绑 1001") == "已解除 张三（1001）在QQ、微信上的绑定。"
    assert await channels_of(both, "1001") == []


async def test_a_member_cannot_unbind_someone_else(chat: Chat) -> None:
    reply = await chat.say("1002", "解绑 1001")
    assert "用法：解绑 <渠道>" in reply
    assert await channels_of(chat.conversation, "1001") == ["test"]


async def test_help_lists_unbind_for_members(chat: Chat) -> None:
    assert "解绑 <渠道>" in await chat.say("1001", "帮助")
