"""绑定: linking a chat account to a roster member, and what strangers may do — with the
name as the proof (QIYI_BIND_PROOF=name). Invitation codes, the phone, staff and the limits
per member: tests/security/test_binding_*.py."""

from __future__ import annotations

import uuid

import pytest

from bot.conversation import Conversation
from bot.messages import Inbound, InboundKind, Sender
from bot.settings import Settings
from data import members
from data.models import BindFailure, Binding, StudyEntry
from tests.conftest import Chat, make_settings
from tests.queries import count

BIND_PROMPT = "您还没有绑定身份。请发送：绑定 工号 姓名"
BIND_FAILED = "工号和姓名对不上"
THROTTLED = "绑定失败次数过多，请 15 分钟后再试"


async def say_as(conversation: Conversation, sender: Sender, text: str) -> str:
    """A text from any chat account, bound or not."""
    inbound = Inbound(sender, uuid.uuid4().hex, InboundKind.TEXT, conversation.clock.now(), text)
    return await conversation.respond(inbound)


async def bound_member(conversation: Conversation, sender: Sender) -> str | None:
    async with conversation.sessions() as session:
        member = await members.member_for(session, sender)
        return member.roster_id if member else None


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, bind_proof="name")


@pytest.fixture
def stranger(conversation: Conversation) -> Chat:
    """A chat on a channel where nobody is bound yet."""
    return Chat(conversation, channel="wx")


async def test_unbound_sender_is_asked_to_bind(stranger: Chat) -> None:
    for text in ("学习 30", "积分", "今日", "你好"):
        reply = await stranger.say("1001", text)
        assert BIND_PROMPT in reply, text
    assert await count(stranger.conversation, StudyEntry) == 0


async def test_binding_with_the_right_id_and_name(stranger: Chat) -> None:
    reply = await stranger.say("1001", "绑定 1001 张三")

    assert "绑定成功！欢迎你，张三（第一党支部）" in reply
    assert await bound_member(stranger.conversation, stranger.sender("1001")) == "1001"
    assert await count(stranger.conversation, Binding, Binding.channel == "wx") == 1
    # Now the account is a member: study is recorded.
    assert "今日累计：30/120 分钟" in await stranger.say("1001", "学习 30")
    assert await count(stranger.conversation, StudyEntry) == 1


@pytest.mark.parametrize("text", ["绑定：1001 张三", "/绑定 1001 张三", "绑定\u30001001\u3000张三"])
async def test_binding_spellings(stranger: Chat, text: str) -> None:
    assert "绑定成功" in await stranger.say("1001", text)
    assert await bound_member(stranger.conversation, stranger.sender("1001")) == "1001"


async def test_binding_again_says_already_bound(stranger: Chat) -> None:
    await stranger.say("1001", "绑定 1001 张三")
    reply = await stranger.say("1001", "绑定 1002 李四")

    assert "本账号已绑定为 张三" in reply
    assert await bound_member(stranger.conversation, stranger.sender("1001")) == "1001"
    assert await count(stranger.conversation, Binding, Binding.channel == "wx") == 1


@pytest.mark.parametrize("text", ["绑定 1001 李四", "绑定 9999 张三", "绑定 1001 张"])
async def test_wrong_id_or_name_fails(stranger: Chat, text: str) -> None:
    reply = await stranger.say("1001", text)

    assert BIND_FAILED in reply
    assert await bound_member(stranger.conversation, stranger.sender("1001")) is None
    assert await count(stranger.conversation, Binding, Binding.channel == "wx") == 0
    assert await count(stranger.conversation, BindFailure, BindFailure.channel == "wx") == 1


@pytest.mark.parametrize("text", ["绑定", "绑定 1001", "绑定 1001 张三 多余"])
async def test_malformed_bind_gives_usage(stranger: Chat, text: str) -> None:
    reply = await stranger.say("1001", text)

    assert "用法：绑定 <工号> <姓名>" in reply
    assert "请写清工号和姓名" in reply
    assert await count(stranger.conversation, Binding, Binding.channel == "wx") == 0


async def test_a_member_bound_on_the_channel_cannot_be_taken_by_another_account(
    stranger: Chat,
) -> None:
    conversation = stranger.conversation
    assert "绑定成功" in await stranger.say("1001", "绑定 1001 张三")

    intruder = Sender("wx", "another-account")
    reply = await say_as(conversation, intruder, "绑定 1001 张三")

    assert "该工号已绑定其他账号" in reply
    assert await bound_member(conversation, intruder) is None
    assert await bound_member(conversation, stranger.sender("1001")) == "1001"
    assert await count(conversation, Binding, Binding.channel == "wx") == 1


async def test_the_same_member_may_bind_one_account_per_channel(chat: Chat) -> None:
    # `chat` bound 1001 on channel "test"; channel "wx" is separate.
    wx = Chat(chat.conversation, channel="wx")
    assert "绑定成功" in await wx.say("1001", "绑定 1001 张三")
    assert await count(chat.conversation, Binding) == 7  # six on "test", one on "wx"
    assert await bound_member(chat.conversation, wx.sender("1001")) == "1001"


async def test_throttled_after_five_failures_and_released_after_the_window(
    stranger: Chat,
) -> None:
    conversation = stranger.conversation
    for _ in range(5):
        assert BIND_FAILED in await stranger.say("1001", "绑定 1001 错名")
    # The sixth attempt, even with the right id and name, is refused.
    reply = await stranger.say("1001", "绑定 1001 张三")

    assert THROTTLED in reply
    assert await bound_member(conversation, stranger.sender("1001")) is None
    assert await count(conversation, Binding, Binding.channel == "wx") == 0
    # A throttled attempt is not a new failure (else the lock would never end).
    assert await count(conversation, BindFailure, BindFailure.channel == "wx") == 5

    # Another account is not throttled by this one's failures.
    other = Sender("wx", "other-account")
    assert "绑定成功" in await say_as(conversation, other, "绑定 1002 李四")

    # Still locked inside the window…
    conversation.clock.advance(minutes=14)
    assert THROTTLED in await stranger.say("1001", "绑定 1001 张三")
    # …and free once it has passed.
    conversation.clock.advance(minutes=1, seconds=1)
    reply = await stranger.say("1001", "绑定 1001 张三")
    assert "绑定成功" in reply
    assert await bound_member(conversation, stranger.sender("1001")) == "1001"


async def test_failures_spread_over_the_window_also_throttle(stranger: Chat) -> None:
    conversation = stranger.conversation
    for minute in range(5):
        if minute:
            conversation.clock.advance(minutes=3)
        await stranger.say("1001", "绑定 1001 错名")
    # Five failures within 12 minutes.
    assert THROTTLED in await stranger.say("1001", "绑定 1001 张三")
    # Fifteen minutes after the last failure none is in the window any more.
    conversation.clock.advance(minutes=15, seconds=1)
    assert "绑定成功" in await stranger.say("1001", "绑定 1001 张三")


async def test_four_failures_do_not_throttle(stranger: Chat) -> None:
    for _ in range(4):
        await stranger.say("1001", "绑定 1001 错名")
    assert "绑定成功" in await stranger.say("1001", "绑定 1001 张三")


async def test_old_failures_do_not_count(stranger: Chat) -> None:
    conversation = stranger.conversation
    for _ in range(5):
        await stranger.say("1001", "绑定 1001 错名")
    conversation.clock.advance(hours=1)
    # A fresh window: one more failure is not enough to throttle.
    assert BIND_FAILED in await stranger.say("1001", "绑定 1001 错名")
    assert "绑定成功" in await stranger.say("1001", "绑定 1001 张三")


async def test_help_works_unbound_and_lists_bind(stranger: Chat) -> None:
    reply = await stranger.say("1001", "帮助")

    assert "请先绑定身份：绑定 工号 姓名" in reply
    assert "绑定 <工号> <姓名>" in reply
    assert "帮助 — 查看可用的指令" in reply
    # Member commands are not offered before binding.
    assert "学习 <时长>" not in reply
    assert "审核" not in reply


async def test_help_for_a_bound_member_does_not_ask_to_bind(chat: Chat) -> None:
    reply = await chat.say("1001", "帮助")
    assert "请先绑定身份" not in reply
    assert "学习 <时长> [备注]" in reply
