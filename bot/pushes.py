"""What gets pushed and to whom: the morning lesson, the midday news, the evening reminder,
review results. Each intended push becomes an outbox row; the dispatcher sends them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import content_media
from bot.channel_names import channel_name
from bot.clock import Clock, today
from bot.settings import Settings
from content.texts import render
from data import articles, audience, groups, outbox
from data.models import ArticleKind, PushKind
from data.outbox import Push

# The pushes of a new article, and the article's kind.
ARTICLE_PUSHES = {
    PushKind.LESSON: ArticleKind.LESSON,
    PushKind.NEWS: ArticleKind.NEWS,
    PushKind.VIDEO: ArticleKind.VIDEO,
}


@dataclass(frozen=True)
class Enqueued:
    kind: PushKind
    count: int
    subject: str = ""  # the article's title, for lessons and news


def due_time(settings: Settings, now: dt.datetime) -> dt.datetime:
    """Now, or the end of the quiet hours when now is inside them: deferred, never dropped."""
    quiet = settings.quiet
    return quiet.next_end(now) if quiet else now


async def _to_every_reachable_member(session: AsyncSession, push: Push) -> AsyncIterator[Push]:
    """The same push, addressed to each member who can be reached, streamed."""
    async for member_id, _name in audience.reachable_members(session):
        yield dataclasses.replace(push, member_id=member_id)


async def enqueue_article(
    session: AsyncSession, settings: Settings, clock: Clock, kind: PushKind
) -> Enqueued:
    """Push the newest published lesson (news, video) not pushed yet to every reachable
    member, and to the branches' QQ groups."""
    now = clock.now()
    article = await articles.take_next_to_push(session, ARTICLE_PUSHES[kind], now)
    if article is None:
        return Enqueued(kind, 0)
    day, due = today(clock), due_time(settings, now)
    link = content_media.watch_link(settings.public_url, article)
    text = render(f"push_{kind.value}", article=article, link=link)
    brief = render("push_brief", kind=kind.value, title=article.title)
    ref = f"article:{article.id}"
    template = Push(0, kind, ref, day, text, brief, due)
    count = await outbox.enqueue(session, _to_every_reachable_member(session, template), now)
    if settings.onebot_api_url:
        posts = [
            groups.Post(group.channel, group.group_id, kind.value, ref, day, text, due)
            for group in await groups.on_channel(session, "qq")
        ]
        await groups.enqueue(session, posts, now)
    return Enqueued(kind, count, article.title)


async def enqueue_reminders(session: AsyncSession, settings: Settings, clock: Clock) -> Enqueued:
    """Remind every member whose reminder time has come and who is below today's goal."""
    now = clock.now()
    day = today(clock)
    goal = settings.daily_goal_minutes
    due = due_time(settings, now)
    candidates = audience.reminder_due(
        session, day, now.time().replace(tzinfo=None), settings.reminder_time, goal
    )

    async def pushes() -> AsyncIterator[Push]:
        async for member_id, name, minutes in candidates:
            yield Push(
                member_id,
                PushKind.REMINDER,
                "study",
                day,
                render("push_reminder", name=name, minutes=minutes, goal=goal),
                render("push_brief", kind="reminder", minutes=minutes, goal=goal, title=""),
                due,
            )

    return Enqueued(PushKind.REMINDER, await outbox.enqueue(session, pushes(), now))


async def enqueue_review_result(
    session: AsyncSession,
    settings: Settings,
    clock: Clock,
    member_id: int,
    entry_id: int,
    text: str,
) -> None:
    now = clock.now()
    push = Push(
        member_id,
        PushKind.REVIEW,
        f"entry:{entry_id}",
        today(clock),
        text,
        text,
        due_time(settings, now),
    )
    await outbox.enqueue(session, [push], now)


async def enqueue_binding_notices(
    session: AsyncSession,
    clock: Clock,
    member_id: int,
    new_binding_id: int,
    new_channel: str,
    to_channels: list[str],
) -> int:
    """Tell each of the member's other chat accounts, at once (quiet hours or not: it may be
    an impostor), that the record gained a binding on `new_channel`, and how to undo it.
    Each notice names the account it is for in its reference (`…>wechat`): the dispatcher
    sends it only there and a reply folds it in only there, never to the new account."""
    now = clock.now()
    name = channel_name(new_channel)
    text = render("notice_bound_elsewhere", channel=name, at=now)
    brief = render("notice_bound_elsewhere_brief", channel=name)
    notices = [
        Push(
            member_id,
            PushKind.SECURITY,
            f"bind:{new_binding_id}>{channel}",
            today(clock),
            text,
            brief,
            now,
        )
        for channel in to_channels
    ]
    return await outbox.enqueue(session, notices, now)
