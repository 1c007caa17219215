"""绑定 proves who you are: the finding (a 工号 and a name were enough to become anyone, the
admin included), invitation codes, the phone's last digits, the name for trusted groups, and
the limits per account and per member."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel, select

from bot import membership
from bot.conversation import Conversation
from bot.messages import Inbound, InboundKind, Sender
from content.texts import render
from data import audit
from data.db import transaction
from data.invitations import LOCKED, grouped
from data.models import BindFailure, Invitation, Member, ReviewState, VolunteerEntry
from tests.queries import count
from tests.security.binding_helpers import (
    audit_rows,
    bind_directly,
    bound_to,
    invitation_of,
    issue_code,
    member,
    say_as,
    use_proof,
)

DONE = "绑定成功"
CLI = audit.Actor(audit.Door.CLI, "cli:office@host", "host")


async def set_phone_tail(conversation: Conversation, roster_id: str, tail: str) -> None:
    async with transaction(conversation.sessions) as session:
        found = (await session.exec(select(Member).where(Member.roster_id == roster_id))).one()
        found.phone_tail = tail
        session.add(found)


def wrong(code: str) -> str:
    """Another 8-digit code."""
    return f"{(int(code) + 1) % 10**8:08d}"


# --- the finding ---------------------------------------------------------------------------


async def test_knowing_the_admins_id_and_name_no_longer_makes_you_the_admin(
    conversation: Conversation,
) -> None:
    # The real admin is on WeChat; a member has volunteer hours waiting for review.
    await bind_directly(conversation, Sender("wechat", "o-admin"), "9001")
    owner = Sender("wechat", "o-1001")
    await bind_directly(conversation, owner, "1001")
    await say_as(conversation, owner, "志愿 2 帮扶老人")
    async with conversation.sessions() as session:
        entry = (await session.exec(select(VolunteerEntry))).one()
    await set_phone_tail(conversation, "9001", "4321")

    # Someone who knows 9001 刘洋 — and even the phone's last digits — tries on QQ.
    impostor = Sender("qq", "66666")
    use_proof(conversation, "code")
    reply = await say_as(conversation, impostor, "绑定 9001 刘洋")
    assert "邀请码" in reply and DONE not in reply
    use_proof(conversation, "phone4")
    assert await say_as(conversation, impostor, "绑定 9001 刘洋 4321") == render("bind_staff_code")
    use_proof(conversation, "name")
    assert await say_as(conversation, impostor, "绑定 9001 刘洋") == render("bind_staff_code")
    assert await bound_to(conversation, impostor) is None

    # 审核 and 通过 are out of the impostor's reach: they are asked to bind.
    for command in ("审核", f"通过 {entry.id}"):
        assert "您还没有绑定身份" in await say_as(conversation, impostor, command)
    async with conversation.sessions() as session:
        assert (await session.get(VolunteerEntry, entry.id)).state == ReviewState.PENDING  # type: ignore[union-attr]


@pytest.mark.parametrize("proof", ["code", "phone4", "name"])
async def test_a_secretary_binds_with_an_invitation_code_in_every_mode(
    conversation: Conversation, proof: str
) -> None:
    use_proof(conversation, proof)  # type: ignore[arg-type]
    await set_phone_tail(conversation, "1003", "1234")
    account = Sender("wechat", "o-1003")
    for attempt in ("绑定 1003 王芳", "绑定 1003 王芳 1234"):
        assert DONE not in await say_as(conversation, account, attempt)
    code = await issue_code(conversation, "1003")

    assert DONE in await say_as(conversation, account, f"绑定 1003 {grouped(code)}")
    assert await bound_to(conversation, account) == "1003"


# --- invitation codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        lambda code: code,
        lambda code: grouped(code),
        lambda code: f"{code[:4]}-{code[4:]}",
        lambda code: code.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    ],
    ids=["plain", "grouped", "dashed", "full-width"],
)
async def test_an_issued_code_binds_once(conversation: Conversation, typed: object) -> None:
    code = await issue_code(conversation, "1001")
    first = Sender("wechat", "o-1001")

    reply = await say_as(conversation, first, f"绑定 1001 {typed(code)}")  # type: ignore[operator]

    assert "绑定成功！欢迎你，张三（第一党支部）" in reply
    assert await bound_to(conversation, first) == "1001"
    invitation = await invitation_of(conversation, "1001")
    assert invitation is not None and invitation.used_at == conversation.clock.now()
    # The same code again, from another account (another channel: one a channel is allowed).
    other = Sender("qq", "10001")
    assert await say_as(conversation, other, f"绑定 1001 {code}") == render("bind_code_used")
    assert await bound_to(conversation, other) is None


async def test_issuing_again_voids_the_earlier_code(conversation: Conversation) -> None:
    old = await issue_code(conversation, "1001")
    new = await issue_code(conversation, "1001")
    assert old != new
    account = Sender("wechat", "o-1001")

    assert await say_as(conversation, account, f"绑定 1001 {old}") == render(
        "bind_failed", offered="code"
    )
    assert await bound_to(conversation, account) is None
    assert DONE in await say_as(conversation, account, f"绑定 1001 {new}")


async def test_a_code_works_only_for_its_own_member(conversation: Conversation) -> None:
    code = await issue_code(conversation, "1001")
    account = Sender("wechat", "o-x")
    assert DONE not in await say_as(conversation, account, f"绑定 1002 {code}")
    assert await bound_to(conversation, account) is None


async def test_the_plain_code_is_nowhere_in_the_database(conversation: Conversation) -> None:
    async with transaction(conversation.sessions) as session:
        found = (await session.exec(select(Member).where(Member.roster_id == "1001"))).one()
        [issued] = await membership.issue_invitations(
            session, CLI, [(found, "第一党支部")], conversation.clock.now()
        )
    code = issued.code
    assert len(code) == 8 and code.isdigit()

    async with conversation.sessions() as session:
        dumped = []
        for table in SQLModel.metadata.sorted_tables:
            rows = await session.exec(text(f'SELECT * FROM "{table.name}"'))  # type: ignore[call-overload]
            dumped.extend(str(value) for row in rows for value in row)
        stored = (await session.exec(select(Invitation))).one().code_hash
    assert stored.startswith("scrypt$")
    assert all(code not in value and grouped(code) not in value for value in dumped)
    # The issue is audited, without the code.
    [row] = await audit_rows(conversation, "invitation.issue")
    assert (row.door, row.actor, row.object_id) == ("cli", "cli:office@host", "1001")


async def test_wrong_codes_are_throttled_per_account(conversation: Conversation) -> None:
    code = await issue_code(conversation, "1001")
    guesser = Sender("wechat", "o-guesser")
    for _ in range(5):
        reply = await say_as(conversation, guesser, f"绑定 1001 {wrong(code)}")
        assert reply == render("bind_failed", offered="code")

    assert "绑定失败次数过多" in await say_as(conversation, guesser, f"绑定 1001 {code}")
    assert await bound_to(conversation, guesser) is None
    # The member's own account is not held up by someone else's guesses.
    assert DONE in await say_as(conversation, Sender("qq", "10001"), f"绑定 1001 {code}")


async def test_wrong_proofs_from_many_accounts_lock_the_member_until_a_new_code(
    conversation: Conversation,
) -> None:
    code = await issue_code(conversation, "1001")
    for n in range(10):  # ten accounts, one guess each: no account is throttled
        guess = f"{(int(code) + 1 + n) % 10**8:08d}"
        reply = await say_as(conversation, Sender("wechat", f"o-{n}"), f"绑定 1001 {guess}")
        assert reply == render("bind_failed", offered="code")

    account = Sender("wechat", "o-1001")
    assert await say_as(conversation, account, f"绑定 1001 {code}") == render("bind_refused")
    assert await bound_to(conversation, account) is None
    invitation = await invitation_of(conversation, "1001")
    assert invitation is not None and invitation.code_hash == LOCKED
    [lock] = await audit_rows(conversation, "invitation.lock")
    assert (lock.door, lock.object_id, lock.origin) == ("system", "1001", "wechat")
    # Locked in every mode, not just for codes.
    use_proof(conversation, "name")
    assert await say_as(conversation, account, "绑定 1001 张三") == render("bind_refused")

    # The office issues a new code: it works.
    conversation.clock.advance(minutes=1)
    fresh = await issue_code(conversation, "1001")
    assert DONE in await say_as(conversation, account, f"绑定 1001 {fresh}")


async def test_nine_wrong_proofs_do_not_lock(conversation: Conversation) -> None:
    code = await issue_code(conversation, "1001")
    for n in range(9):
        await say_as(conversation, Sender("wechat", f"o-{n}"), f"绑定 1001 {wrong(code)}")
    assert DONE in await say_as(conversation, Sender("wechat", "o-1001"), f"绑定 1001 {code}")


async def test_the_member_limit_counts_wrong_proofs_within_a_day(
    conversation: Conversation,
) -> None:
    code = await issue_code(conversation, "1001")
    for n in range(10):
        if n == 5:
            conversation.clock.advance(hours=24, seconds=1)
        await say_as(conversation, Sender("wechat", f"o-{n}"), f"绑定 1001 {wrong(code)}")
    # Ten wrong proofs, but never ten within 24 hours.
    assert DONE in await say_as(conversation, Sender("wechat", "o-1001"), f"绑定 1001 {code}")


async def test_a_member_who_left_cannot_bind(conversation: Conversation) -> None:
    code = await issue_code(conversation, "1001")
    async with transaction(conversation.sessions) as session:
        found = (await session.exec(select(Member).where(Member.roster_id == "1001"))).one()
        now = conversation.clock.now()
        await membership.leave(session, CLI, found, now.date(), now)
    account = Sender("wechat", "o-1001")

    assert await say_as(conversation, account, f"绑定 1001 {code}") == render("bind_refused")
    # Not with a code issued afterwards either, nor by name.
    fresh = await issue_code(conversation, "1001")
    assert await say_as(conversation, account, f"绑定 1001 {fresh}") == render("bind_refused")
    use_proof(conversation, "name")
    assert await say_as(conversation, account, "绑定 1001 张三") == render("bind_refused")
    assert await bound_to(conversation, account) is None


async def test_code_mode_answers_a_name_with_what_to_send(conversation: Conversation) -> None:
    account = Sender("wechat", "o-1001")
    reply = await say_as(conversation, account, "绑定 1001 张三")

    assert "用法：绑定 <工号> <邀请码>" in reply
    assert "8位邀请码" in reply
    assert await bound_to(conversation, account) is None
    assert await count(conversation, BindFailure) == 0  # not a guess: nothing counted


async def test_a_binding_is_audited_with_the_member_as_actor(conversation: Conversation) -> None:
    await bind_directly(conversation, Sender("qq", "10001"), "1001")
    code = await issue_code(conversation, "1001")
    assert DONE in await say_as(conversation, Sender("wechat", "o-1001"), f"绑定 1001 {code}")

    [row] = await audit_rows(conversation, "member.bind")
    found = await member(conversation, "1001")
    assert (row.door, row.origin, row.actor, row.actor_id) == (
        "chat",
        "wechat",
        "张三（1001）",
        found.id,
    )
    assert (row.object_type, row.object_id, row.branch_id) == ("member", "1001", found.branch_id)
    assert (row.before, row.after) == ('{"channels": ["qq"]}', '{"channels": ["qq", "wechat"]}')


# --- the other proofs ----------------------------------------------------------------------


async def test_phone4_binds_with_the_name_and_the_last_four_digits(
    conversation: Conversation,
) -> None:
    use_proof(conversation, "phone4")
    await set_phone_tail(conversation, "1001", "5678")
    account = Sender("wechat", "o-1001")

    assert "用法：绑定 <工号> <姓名> <手机后四位>" in await say_as(
        conversation, account, "绑定 1001 张三"
    )
    assert await say_as(conversation, account, "绑定 1001 张三 0000") == render(
        "bind_failed", offered="phone4"
    )
    assert await say_as(conversation, account, "绑定 1001 李四 5678") == render(
        "bind_failed", offered="phone4"
    )
    # 1002 has no phone in the roster: only a code will do.
    assert await say_as(conversation, account, "绑定 1002 李四 1234") == render("bind_no_phone")
    assert await bound_to(conversation, account) is None

    assert DONE in await say_as(conversation, account, "绑定 1001 张三 ５６７８")
    assert await bound_to(conversation, account) == "1001"


async def test_phone4_guesses_from_many_accounts_lock_the_member(
    conversation: Conversation,
) -> None:
    use_proof(conversation, "phone4")
    await set_phone_tail(conversation, "1001", "5678")
    for n in range(10):
        await say_as(conversation, Sender("wechat", f"o-{n}"), f"绑定 1001 张三 {n:04d}")
    account = Sender("wechat", "o-1001")
    assert await say_as(conversation, account, "绑定 1001 张三 5678") == render("bind_refused")


async def test_name_mode_still_binds_members_but_not_staff(conversation: Conversation) -> None:
    use_proof(conversation, "name")
    member_account, secretary_account = Sender("wechat", "o-1001"), Sender("wechat", "o-1003")

    assert DONE in await say_as(conversation, member_account, "绑定 1001 张三")
    assert await say_as(conversation, secretary_account, "绑定 1003 王芳") == render(
        "bind_staff_code"
    )
    # Also when the name is wrong: the answer tells nothing about the name.
    assert await say_as(conversation, secretary_account, "绑定 1003 某某") == render(
        "bind_staff_code"
    )
    assert await bound_to(conversation, secretary_account) is None


@pytest.mark.parametrize(
    ("proof", "what", "example"),
    [
        ("code", "绑定 工号 邀请码", "绑定 1001 1234 5678"),
        ("phone4", "绑定 工号 姓名 手机后四位", "绑定 1001 张三 5678"),
        ("name", "绑定 工号 姓名", "绑定 1001 张三"),
    ],
)
async def test_the_prompt_the_welcome_and_help_say_what_to_send(
    conversation: Conversation, proof: str, what: str, example: str
) -> None:
    use_proof(conversation, proof)  # type: ignore[arg-type]
    stranger = Sender("wechat", "o-stranger")

    prompt = await say_as(conversation, stranger, "学习 30")
    assert f"请发送：{what}" in prompt and example in prompt
    help_text = await say_as(conversation, stranger, "帮助")
    assert f"请先绑定身份：{what}" in help_text
    assert render("bind_usage", proof=proof) in help_text
    assert what in render("welcome", proof=proof)
    others = {"code": "邀请码", "phone4": "手机后四位", "name": "绑定 工号 姓名（"}
    for other, word in others.items():
        if other != proof and not (proof == "phone4" and other == "name"):
            assert word not in prompt


async def test_the_welcome_event_says_what_to_send(conversation: Conversation) -> None:
    inbound = Inbound(
        Sender("wechat", "o-new"), "sub-1", InboundKind.SUBSCRIBE, conversation.clock.now()
    )
    reply = await conversation.respond(inbound)
    assert reply == render("welcome", proof="code")
    assert "绑定 工号 邀请码" in reply
