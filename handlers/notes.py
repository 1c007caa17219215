"""`笔记 <文字>`: a study note, toward "write one article a week"."""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import awards
from bot.clock import Clock
from bot.router import UsageError
from bot.rules import PointsRules
from bot.textforms import typed
from content.texts import render
from data import notes, points
from data.models import Member
from handlers import router

MIN_CHARS = 5  # counted (see `counted_chars`)
MAX_CHARS = 5000  # as typed, every character

# Han ideographs: 〇, CJK Unified Ideographs with Extension A, the compatibility block, and
# the supplementary and tertiary planes' ideographs (Extensions B to I and their
# compatibility supplement). Not CJK punctuation, radicals or strokes.
_IDEOGRAPH = re.compile("[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U000323af]")
# A word: a run of letters and digits (Unicode's, so "ＡＢＣ" and "café" too; not "_").
_WORD = re.compile(r"[^\W_]+")


def counted_chars(text: str) -> int:
    """A note's length as the points rules count it (字数): each Chinese character counts one,
    and each word of letters or digits counts one ("Python", "2024", "5G" — one each);
    punctuation, emoji, other symbols and spaces count nothing."""
    ideographs = _IDEOGRAPH.subn(" ", text)
    return ideographs[1] + len(_WORD.findall(ideographs[0]))


def parse_note(args: str) -> str:
    text = typed(args)
    if len(text) > MAX_CHARS:
        raise UsageError("note_long", most=MAX_CHARS)
    if counted_chars(text) < MIN_CHARS:
        raise UsageError("note_short", least=MIN_CHARS)
    return text


@router.command(
    "笔记",
    usage="笔记 <学习心得>",
    summary="记录学习笔记，每周一篇800字以上为“周写一文”",
    parse=parse_note,
    max_chars=2 * MAX_CHARS,  # above MAX_CHARS, parse_note answers with the note limit
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
    note = await notes.add_note(session, member.id, args, counted_chars(args), today, clock.now())
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
