"""Sending a notice (通知): one outbox row per member who can be reached, through the
delivery ladder like every push, once — a form sent twice (a double click, a reload) finds
the notice its token already made — and an audit row."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock, today
from bot.pushes import due_time
from bot.settings import Settings
from content.texts import render
from data import audit, notices, outbox
from data.models import Member, Notice, PushKind
from data.notices import Audience
from data.outbox import Push

TEXT_LIMIT = 600  # one WeChat text message (2,048 bytes) with the heading and the signature


@dataclass(frozen=True)
class Sent:
    notice: Notice
    new: bool  # False: this form had been sent already


def message(text: str, sender: Member, branch: str) -> str:
    return render("push_notice", text=text, sender=sender.name, branch=branch)


async def send(
    session: AsyncSession,
    actor: audit.Actor,
    sender: Member,
    branch: str,
    audience: Audience,
    text: str,
    token: str,
    settings: Settings,
    clock: Clock,
) -> Sent:
    """Queue the notice for every member of `audience` who can be reached."""
    known = await notices.by_token(session, token)
    if known is not None:
        return Sent(known, False)
    assert sender.id is not None
    now = clock.now()
    scope = {"branches": list(audience.branch_ids), "role": audience.role}
    notice = Notice(
        token=token, text=text, audience=json.dumps(scope), sent_by=sender.id, sent_at=now
    )
    session.add(notice)
    await session.flush()
    whole = message(text, sender, branch)
    brief = render("push_brief", kind=PushKind.NOTICE.value, title=text)
    template = Push(
        0,
        PushKind.NOTICE,
        f"notice:{notice.id}",
        today(clock),
        whole,
        brief,
        due_time(settings, now),
    )

    async def pushes() -> AsyncIterator[Push]:
        async for member_id in notices.recipients(session, audience):
            yield dataclasses.replace(template, member_id=member_id)

    notice.recipients = await outbox.enqueue(session, pushes(), now)
    session.add(notice)
    await audit.record(
        session,
        actor,
        "notice.send",
        object_type="notice",
        object_id=notice.id,
        branch_id=audience.branch_ids[0] if len(audience.branch_ids) == 1 else None,
        at=now,
        after={"to": scope, "recipients": notice.recipients, "text": text[:200]},
    )
    return Sent(notice, True)
