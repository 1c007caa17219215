"""`笔记 <文字>`: a study note, toward "write one article a week"."""

from __future__ import annotations

import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import awards
from bot.clock import Clock
from bot.router import UsageError
from bot.rules import PointsRules
from content.texts import render
from data import notes, points
from data.models import Member
from handlers import router

MIN_CHARS = 5
MAX_CHARS = 5000


def parse_note(args: str) -> str:
    text = args.strip()
    if len(text) < MIN_CHARS:
        raise UsageError("note_short", least=MIN_CHARS)
    if len(text) > MAX_CHARS:
        raise UsageError("note_long", most=MAX_CHARS)
    return text


@router.command(
    "笔记",
    usage="笔记 <学习心得>",
    summary="记录学习笔记，每周一篇800字以上为“周写一文”",
    parse=parse_note,
)
async def write_note(
    args: str,
    member: Member,
    session: AsyncSession,
    clock: Clock,
    rules: PointsRules,
    today: dt.date,
) -> str:
    assert member.id is not None
    note = await notes.add_note(session, member.id, args, today, clock.now())
    gained = await awards.for_note(session, rules, member.id, note.chars, today, clock.now())
    monday = today - dt.timedelta(days=today.weekday())
    return render(
        "note_saved",
        chars=note.chars,
        week_chars=await notes.chars_between(session, member.id, monday, today),
        article_done=await points.has_award(
            session, member.id, "article", awards.article_ref(today)
        ),
        article_chars=rules.article_min_chars,
        points=gained,
    )
