"""Branch scores with every number worked out by hand: a small October 2026 built row by row.

The organisation (goal 120 minutes a day, the shipped rules: weights 20/20/15/10/10/10/5/10,
which add up to 100; 15 participation days, 4 volunteer hours and 2,500 note characters per
member, 4 materials per branch, all "for a month": a period is worth
days / (days of the calendar months it touches) × (those months) months of targets, so a
whole month is worth exactly 1 and a whole quarter 3; participation needs
ceil(15 × months × active days / calendar days) study days, in integer arithmetic;
articles from 800 characters):

    第一党支部  张三 1001 (since January), 李四 1002 (joined 2026-10-17 00:30 Shanghai),
               王芳 1003 (since January, does nothing)
    第二党支部  赵强 2001 (since January)
    第三党支部  nobody

October 2026 has 31 days (worth 31/31 × 1 = 1) and touches the ISO weeks 40 (Sep 28 - Oct 4) to
44 (Oct 26 - Nov 1): 5 weeks. There is a little in September (for the quarter) and on
November 1-2 (outside October, inside the fourth quarter and the year).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.reports.bulletins import (
    Context,
    MonthLine,
    PeriodBranch,
    month_report,
    quarter_report,
    year_report,
)
from bot.reports.periods import PeriodKind, ReportPeriod, just_ended, parse_period
from bot.reports.scoring import PARTS, branch_parts, weeks_in
from bot.rules import ScoringRules, load_rules
from data.db import Sessions, session_factory, transaction
from data.figures import MemberFigures, Period, longest_run
from data.models import (
    Article,
    ArticleKind,
    ArticleRead,
    Branch,
    Material,
    Member,
    Note,
    PointsEntry,
    QuizAnswer,
    ReviewState,
    StudyEntry,
    VolunteerEntry,
)
from tests.conftest import SHANGHAI

UTC = dt.UTC
GOAL = 120
ONE, TWO, THREE = "第一党支部", "第二党支部", "第三党支部"
OCT_WORTH = 31 / 31 * 1  # October: period.days / calendar days × calendar months = 1.0


def context() -> Context:
    return Context(ZoneInfo("Asia/Shanghai"), GOAL, load_rules())


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    """A moment of 2026 in Shanghai."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def oct_(day: int) -> dt.date:
    return dt.date(2026, 10, day)


@dataclass
class Ids:
    branches: dict[str, int]
    members: dict[str, int]


@dataclass
class Month:
    sessions: Sessions
    ids: Ids


# --- the data ------------------------------------------------------------------------------

# 张三 1001: (day of October, minutes) -> 16 study days.
ZHANG_STUDY = [
    (1, 120),  # written at 00:05 on Oct 1 Shanghai (Sep 30 16:05 UTC): an October day. goal
    (2, 60),
    (2, 60),  # two entries on one day: 120, goal
    (3, 150),  # goal; 1-3 is a run of 3
    (5, 120),  # goal (the 4th is missing)
    (6, 30),
    (10, 120),
    (11, 120),
    (12, 120),
    (13, 120),  # goal 10-13: the longest run, 4
    (14, 119),  # one minute short: not a goal day
    (20, 45),
    (21, 45),
    (22, 45),
    (23, 45),
    (30, 90),
    (31, 200),  # written at 23:55 on Oct 31 Shanghai: goal
]
# minutes 120+60+60+150+120+30+4*120+119+4*45+90+200 = 1609
# goal days: 1, 2, 3, 5, 10, 11, 12, 13, 31 = 9; longest run 4 (10-13)

# 李四 1002 (in the organisation Oct 17-31: 15 days) -> 8 study days.
LI_STUDY = [(17, 120), (18, 120), (19, 60), (25, 130), (26, 120), (27, 120), (28, 20), (29, 20)]
# minutes 120+120+60+130+120+120+20+20 = 710; goal days 17, 18, 25, 26, 27 = 5; longest run 3

# 赵强 2001: Oct 1-14 at 120 and Oct 15 at 125 -> 15 study days, all at the goal.
ZHAO_STUDY = [(day, 120) for day in range(1, 15)] + [(15, 125)]
# minutes 14*120 + 125 = 1805; goal days 15; longest run 15


async def build(sessions: Sessions) -> Ids:
    async with transaction(sessions) as session:
        branches = {name: Branch(name=name) for name in (ONE, TWO, THREE)}
        session.add_all(branches.values())
        await session.flush()
        bid = {name: branch.id for name, branch in branches.items()}
        january = at(1, 1, 0, 0)
        members = {
            "1001": Member(roster_id="1001", name="张三", branch_id=bid[ONE], joined_at=january),
            # 00:30 on Oct 17 in Shanghai is 16:30 on Oct 16 in UTC: the local day is the 17th.
            "1002": Member(
                roster_id="1002", name="李四", branch_id=bid[ONE], joined_at=at(10, 17, 0, 30)
            ),
            "1003": Member(roster_id="1003", name="王芳", branch_id=bid[ONE], joined_at=january),
            "2001": Member(roster_id="2001", name="赵强", branch_id=bid[TWO], joined_at=january),
        }
        session.add_all(members.values())
        lessons = {
            slug: Article(
                slug=slug,
                kind=ArticleKind.LESSON.value,
                title=slug,
                body="…",
                publish_at=at(9, 1),
            )
            for slug in ("l1", "l2", "l3", "l4")
        }
        news = Article(
            slug="n1", kind=ArticleKind.NEWS.value, title="n1", body="…", publish_at=at(9, 1)
        )
        session.add_all([*lessons.values(), news])
        await session.flush()
        mid = {roster: member.id for roster, member in members.items()}
        zhang, li, zhao = mid["1001"], mid["1002"], mid["2001"]
        assert None not in mid.values() and None not in bid.values()

        def study(member: int | None, day: dt.date, minutes: int, created: dt.datetime) -> None:
            assert member is not None
            session.add(StudyEntry(member_id=member, day=day, minutes=minutes, created_at=created))

        for day, minutes in ZHANG_STUDY:
            created = {1: at(10, 1, 0, 5), 31: at(10, 31, 23, 55)}.get(day, at(10, day))
            study(zhang, oct_(day), minutes, created)
        # 00:05 on Nov 1 Shanghai is still Oct 31 in UTC, but the local day is November's.
        study(zhang, dt.date(2026, 11, 1), 100, at(11, 1, 0, 5))
        for day, minutes in LI_STUDY:
            study(li, oct_(day), minutes, at(10, day))
        for day, minutes in ZHAO_STUDY:
            study(zhao, oct_(day), minutes, at(10, day))
        # 23:50 on Sep 30 Shanghai: September's, for the third quarter.
        study(zhao, dt.date(2026, 9, 30), 120, at(9, 30, 23, 50))

        def volunteer(member: int | None, day: int, minutes: int, state: ReviewState) -> None:
            assert member is not None
            session.add(
                VolunteerEntry(
                    member_id=member,
                    minutes=minutes,
                    description="社区服务",
                    day=oct_(day),
                    state=state.value,
                    created_at=at(10, day),
                )
            )

        volunteer(zhang, 8, 150, ReviewState.APPROVED)  # counts: 150
        volunteer(zhang, 9, 120, ReviewState.PENDING)  # not reviewed yet: does not count
        volunteer(li, 20, 90, ReviewState.APPROVED)  # counts: 90
        volunteer(zhao, 12, 300, ReviewState.APPROVED)  # counts: 300 (5 hours)
        volunteer(zhao, 13, 600, ReviewState.PENDING)  # does not count
        volunteer(zhao, 14, 60, ReviewState.REJECTED)  # does not count

        def note(member: int | None, day: int, chars: int) -> None:
            assert member is not None
            session.add(
                Note(
                    member_id=member, day=oct_(day), chars=chars, text="悟", created_at=at(10, day)
                )
            )

        note(zhang, 7, 900)  # article, ISO week 41
        note(zhang, 8, 300)
        note(zhang, 9, 1000)  # article, week 41 again: still one week
        note(zhang, 15, 800)  # exactly 800: article, week 42
        note(zhang, 16, 799)  # one short
        # 张三: 900+300+1000+800+799 = 3799 characters, article weeks {41, 42} = 2
        note(li, 19, 850)  # article, week 43
        note(li, 26, 200)
        # 李四: 850+200 = 1050 characters, 1 article week
        note(zhao, 2, 100)
        note(zhao, 3, 200)
        # 赵强: 300 characters, no article

        def answer(member: int | None, slug: str, correct: bool, moment: dt.datetime) -> None:
            assert member is not None
            session.add(
                QuizAnswer(
                    member_id=member,
                    article_id=lessons[slug].id,
                    choice="A" if correct else "B",
                    correct=correct,
                    answered_at=moment,
                )
            )

        answer(zhang, "l1", True, at(10, 31, 23, 59))  # 15:59 UTC on Oct 31: October
        answer(zhang, "l2", True, at(11, 1, 0, 1))  # 16:01 UTC on Oct 31, but November
        answer(zhang, "l3", False, at(10, 1, 0, 1))  # 16:01 UTC on Sep 30, but October
        answer(li, "l4", True, at(10, 20))
        answer(zhao, "l1", True, at(10, 5))
        answer(zhao, "l2", False, at(10, 6))
        # October: 张三 2 answered 1 correct, 李四 1/1, 赵强 2/1

        def read(member: int | None, article: Article, moment: dt.datetime) -> None:
            assert member is not None and article.id is not None
            session.add(ArticleRead(member_id=member, article_id=article.id, read_at=moment))

        read(zhang, lessons["l1"], at(10, 10))
        read(zhang, lessons["l2"], at(10, 31, 23, 59))  # October
        read(zhang, news, at(10, 12))  # news, not a lesson
        read(zhang, lessons["l3"], at(11, 1, 0, 1))  # November
        read(li, lessons["l4"], at(10, 20))
        # lessons read in October: 张三 2, 李四 1; in 2026: 张三 3, 李四 1

        serial = itertools.count(1)

        def material(branch: str, member: int | None, day: dt.date) -> None:
            assert member is not None
            session.add(
                Material(
                    branch_id=bid[branch],
                    member_id=member,
                    kind="image",
                    channel="test",
                    reference=f"media-{next(serial)}",
                    day=day,
                    created_at=dt.datetime.combine(day, dt.time(12), SHANGHAI),
                )
            )

        for day in (oct_(5), oct_(31), dt.date(2026, 11, 1), dt.date(2026, 11, 2)):
            material(ONE, zhang, day)  # October 2, November 2
        for day in range(1, 6):
            material(TWO, zhao, oct_(day))  # October 5
        for _ in range(2):
            material(TWO, zhao, dt.date(2026, 9, 30))  # September 2

        def points(member: int | None, day: dt.date, amount: int) -> None:
            assert member is not None
            session.add(
                PointsEntry(
                    member_id=member,
                    points=amount,
                    source="test",
                    ref=f"test:{day}",
                    reason="测试",
                    day=day,
                    created_at=dt.datetime.combine(day, dt.time(12), SHANGHAI),
                )
            )

        points(zhang, oct_(1), 6)
        points(zhang, oct_(31), 4)
        points(zhang, dt.date(2026, 11, 1), 3)
        points(zhang, dt.date(2026, 9, 30), 2)
        points(li, oct_(17), 8)
        points(zhao, oct_(10), 20)
        points(zhao, dt.date(2026, 9, 30), 1)
        # October: 张三 6+4 = 10, 李四 8, 赵强 20; 2026: 张三 15, 李四 8, 赵强 21
    return Ids(
        {name: int(value) for name, value in bid.items() if value is not None},
        {roster: int(value) for roster, value in mid.items() if value is not None},
    )


@pytest.fixture
async def october(engine: AsyncEngine) -> Month:
    sessions = session_factory(engine)
    return Month(sessions, await build(sessions))


# --- October: the members ------------------------------------------------------------------


async def test_october_member_figures(october: Month) -> None:
    async with transaction(october.sessions) as session:
        report = await month_report(session, parse_period("2026-10"), context())
    m, b = october.ids.members, october.ids.branches
    # By branch name, then points (highest first): 第一 (10, 8, 0) before 第二.
    assert report.members == [
        MemberFigures(
            m["1001"],
            "1001",
            "张三",
            b[ONE],
            ONE,
            active_days=31,
            minutes=1609,
            study_days=16,
            goal_days=9,
            longest_streak=4,
            volunteer_minutes=150,  # the pending 120 does not count
            note_chars=3799,
            article_weeks=2,
            quiz_answered=2,  # 23:59 Oct 31 and 00:01 Oct 1 count; 00:01 Nov 1 does not
            quiz_correct=1,
            lessons_read=2,  # the news item and November's lesson do not count
            points=10,
        ),
        MemberFigures(
            m["1002"],
            "1002",
            "李四",
            b[ONE],
            ONE,
            active_days=31 - 17 + 1,  # 15: joined Oct 17 local time (Oct 16 in UTC)
            minutes=710,
            study_days=8,
            goal_days=5,
            longest_streak=3,
            volunteer_minutes=90,
            note_chars=1050,
            article_weeks=1,
            quiz_answered=1,
            quiz_correct=1,
            lessons_read=1,
            points=8,
        ),
        MemberFigures(m["1003"], "1003", "王芳", b[ONE], ONE, active_days=31),  # all zeros
        MemberFigures(
            m["2001"],
            "2001",
            "赵强",
            b[TWO],
            TWO,
            active_days=31,
            minutes=1805,
            study_days=15,
            goal_days=15,
            longest_streak=15,
            volunteer_minutes=300,  # the pending 600 and the rejected 60 do not count
            note_chars=300,
            article_weeks=0,
            quiz_answered=2,
            quiz_correct=1,
            lessons_read=0,
            points=20,
        ),
    ]


def test_shanghai_midnight_in_utc() -> None:
    assert at(10, 31, 23, 59).astimezone(UTC) == dt.datetime(2026, 10, 31, 15, 59, tzinfo=UTC)
    assert at(11, 1, 0, 1).astimezone(UTC) == dt.datetime(2026, 10, 31, 16, 1, tzinfo=UTC)
    assert Period(oct_(1), oct_(31)).bounds(SHANGHAI) == (
        dt.datetime(2026, 9, 30, 16, 0, tzinfo=UTC),
        dt.datetime(2026, 10, 31, 16, 0, tzinfo=UTC),
    )


# --- October: the branches -----------------------------------------------------------------

# 第一党支部: 张三 (31 days), 李四 (15 days), 王芳 (31 days, nothing).
ONE_PARTS = {
    # Participation needs ceil(15 × 1 month × active/31) study days:
    # 张三 16 >= ceil(15 × 31/31) = 15 yes; 李四 8 >= ceil(225/31 = 7.26) = 8 yes; 王芳 0 no.
    "participation": (1 + 1 + 0) / 3,
    # Daily minutes over the days each belonged, against 120, capped at 1.
    "study": (min(1, 1609 / 31 / 120) + min(1, 710 / 15 / 120) + min(1, 0 / 31 / 120)) / 3,
    "goal_days": (9 / 31 + 5 / 15 + 0 / 31) / 3,
    # (150 + 90 + 0) minutes = 4 hours over 3 members, against 4 × 1 hours: 1/3.
    "volunteer": min(1, (150 + 90 + 0) / 60 / 3 / (4 * OCT_WORTH)),
    # (3799 + 1050 + 0) characters over 3 members, against 2500 × 1: 1616.3/2500 = 0.6465.
    "notes": min(1, (3799 + 1050 + 0) / 3 / (2500 * OCT_WORTH)),
    # Article weeks against max(1, floor(5 weeks × active/31 + 0.5)):
    # 张三 2/floor(5.5) = 2/5, 李四 1/floor(2.42 + 0.5) = 1/2, 王芳 0/5.
    "articles": (min(1, 2 / 5) + min(1, 1 / 2) + min(1, 0 / 5)) / 3,
    "quiz": (1 + 1 + 0) / (2 + 1 + 0),
    "materials": min(1, 2 / (4 * OCT_WORTH)),  # 2 of 4: 0.5
}
# 第二党支部: 赵强 alone.
TWO_PARTS = {
    # 15 study days >= ceil(15 × 1 × 31/31) = 15: exactly enough in a whole 31-day month.
    "participation": 1 / 1,
    "study": min(1, 1805 / 31 / 120),
    "goal_days": 15 / 31,
    "volunteer": min(1, 300 / 60 / 1 / (4 * OCT_WORTH)),  # 5 h > 4 h: capped at 1
    "notes": min(1, 300 / 1 / (2500 * OCT_WORTH)),  # 300/2500 = 0.12
    "articles": min(1, 0 / 5),
    "quiz": 1 / 2,
    "materials": min(1, 5 / (4 * OCT_WORTH)),  # 5 > 4: capped at 1
}
WEIGHTS = {
    "participation": 20,
    "study": 20,
    "goal_days": 15,
    "volunteer": 10,
    "notes": 10,
    "articles": 10,
    "quiz": 5,
    "materials": 10,
    "grading": 10,  # the office's grade: left out (待评) until given, see below
    "organisation": 10,  # 组织生活: left out in a period without meetings
}


def weighted(parts: dict[str, float]) -> float:
    """The score before rounding: 100 × the weighted mean of the parts there are."""
    given = [part for part in PARTS if part in parts]
    return (
        100
        * sum(WEIGHTS[part] * parts[part] for part in given)
        / sum(WEIGHTS[part] for part in given)
    )


# 第一: 20×2/3 + 20×0.27566 + 15×0.20789 + 10×1/3 + 10×0.64653 + 10×0.3 + 5×2/3
#       + 10×0.5 = 13.333 + 5.513 + 3.118 + 3.333 + 6.465 + 3 + 3.333 + 5 = 43.097
ONE_OCTOBER = 43.1
# 第二: 20×1 + 20×0.48522 + 15×0.48387 + 10×1 + 10×0.12 + 0 + 5×0.5 + 10×1
#       = 20 + 9.704 + 7.258 + 10 + 1.2 + 2.5 + 10 = 60.662
TWO_OCTOBER = 60.7


def test_hand_scores_add_up() -> None:
    """The hand-computed parts give the hand-rounded scores; the hand sums are right."""
    assert sum(minutes for _, minutes in ZHANG_STUDY) == 1609
    assert len({day for day, _ in ZHANG_STUDY}) == 16
    assert sum(minutes for _, minutes in LI_STUDY) == 710
    assert sum(minutes for _, minutes in ZHAO_STUDY) == 1805
    assert round(weighted(ONE_PARTS), 1) == ONE_OCTOBER
    assert round(weighted(TWO_PARTS), 1) == TWO_OCTOBER


async def test_october_branch_parts_scores_and_ranks(october: Month) -> None:
    async with transaction(october.sessions) as session:
        report = await month_report(session, parse_period("2026-10"), context())
    assert report.weights == WEIGHTS
    # Ranked best first: 第二 60.7 before 第一 43.1.
    two, one, three = report.branches
    b = october.ids.branches

    assert (two.branch_id, two.branch, two.members, two.rank) == (b[TWO], TWO, 1, 1)
    assert two.parts == pytest.approx(TWO_PARTS)
    assert two.score == TWO_OCTOBER

    assert (one.branch_id, one.branch, one.members, one.rank) == (b[ONE], ONE, 3, 2)
    assert one.parts == pytest.approx(ONE_PARTS)
    assert one.score == ONE_OCTOBER

    # No members: no parts, no score, no rank, listed last.
    assert (three.branch_id, three.branch, three.members) == (b[THREE], THREE, 0)
    assert (three.parts, three.score, three.rank) == ({}, None, None)


# --- the fourth quarter against the third --------------------------------------------------

# September (30 days, worth 30/30 × 1 = 1; participation needs ceil(15 × 30/30) = 15, so
# 赵强's single study day does not count): only 赵强 (120 minutes on the 30th, one goal day) and
# 第二's 2 materials. 第一 scores 0.0 in July, August and September (members, no activity).
TWO_SEPTEMBER = round(20 * min(1, 120 / 30 / 120) + 15 * (1 / 30) + 10 * min(1, 2 / 4), 1)
# = round(0.667 + 0.5 + 5, 1) = 6.2
# November (30 days, worth 1; 张三's 1 study day < 15): 张三's 100 minutes on Nov 1 (not a
# goal day), his correct answer at 00:01 on Nov 1, 第一's 2 materials; 第二 does nothing.
ONE_NOVEMBER = round(20 * (min(1, 100 / 30 / 120) + 0 + 0) / 3 + 5 * (1 / 1) + 10 * (2 / 4), 1)
# = round(0.185 + 5 + 5, 1) = 10.2


def test_hand_month_scores() -> None:
    assert TWO_SEPTEMBER == 6.2
    assert ONE_NOVEMBER == 10.2


async def test_quarter_report_rank_change_and_most_improved(october: Month) -> None:
    async with transaction(october.sessions) as session:
        report = await quarter_report(session, parse_period("2026Q4"), context())
    # Third quarter: 第一 (0.0 + 0.0 + 0.0)/3 = 0.0 (2nd); 第二 (0 + 0 + 6.2)/3 = 2.07 -> 2.1 (1st).
    # Fourth: 第二 (60.7 + 0.0 + 0.0)/3 = 20.23 -> 20.2 (1st); 第一 (43.1 + 10.2 + 0.0)/3
    # = 17.77 -> 17.8 (2nd). Both keep their places.
    assert round((TWO_OCTOBER + 0.0 + 0.0) / 3, 1) == 20.2
    assert round((ONE_OCTOBER + ONE_NOVEMBER + 0.0) / 3, 1) == 17.8
    two, one, three = report.branches
    assert two == PeriodBranch(
        TWO,
        1,
        [TWO_OCTOBER, 0.0, 0.0],
        score=20.2,
        rank=1,
        previous_rank=1,
        previous_score=2.1,
    )
    assert one == PeriodBranch(
        ONE,
        3,
        [ONE_OCTOBER, ONE_NOVEMBER, 0.0],
        score=17.8,
        rank=2,
        previous_rank=2,
        previous_score=0.0,
    )
    assert three == PeriodBranch(THREE, 0, [None, None, None])
    assert two.rank_change == 0
    assert one.rank_change == 0
    assert three.rank_change is None
    assert two.score_change == 18.1  # 20.2 - 2.1
    assert one.score_change == 17.8  # 17.8 - 0.0
    assert three.score_change is None
    assert report.top is two
    assert report.most_improved is two  # 18.1 > 17.8
    # The quarter's figures run over Oct 1 - Dec 31: 张三 gains November's 100 minutes,
    # answer, lesson and 3 points.
    zhang = next(m for m in report.members if m.roster_id == "1001")
    assert (
        zhang.active_days,
        zhang.minutes,
        zhang.study_days,
        zhang.goal_days,
        zhang.longest_streak,
        zhang.quiz_answered,
        zhang.quiz_correct,
        zhang.lessons_read,
        zhang.points,
    ) == (92, 1609 + 100, 17, 9, 4, 3, 2, 3, 13)
    li = next(m for m in report.members if m.roster_id == "1002")
    assert li.active_days == 31 + 30 + 31 - 16  # Oct 17 - Dec 31: 76
    assert [m.roster_id for m in report.members] == ["1001", "1002", "1003", "2001"]


# --- the year ------------------------------------------------------------------------------


async def test_year_report_totals_and_month_lines(october: Month) -> None:
    async with transaction(october.sessions) as session:
        report = await year_report(session, parse_period("2026"), context())
    assert report.members == 4
    # 张三 1609 + 100, 李四 710, 赵强 1805 + 120 (Sep 30) = 4344 minutes = 72.4 hours.
    assert report.study_hours == round((1609 + 100 + 710 + 1805 + 120) / 60, 1) == 72.4
    assert report.volunteer_hours == round((150 + 90 + 300) / 60, 1) == 9.0
    assert report.note_chars == 3799 + 1050 + 300 == 5149
    assert report.lessons_read == 3 + 1
    # Points in 2026: 赵强 20 + 1 = 21, 张三 6 + 4 + 3 + 2 = 15, 李四 8; 王芳 0 is left out.
    assert [(m.roster_id, m.points) for m in report.top_members] == [
        ("2001", 21),
        ("1001", 15),
        ("1002", 8),
    ]
    # Means of the twelve monthly scores: 第二 (6.2 + 60.7)/12 = 5.575 -> 5.6 (1st),
    # 第一 (43.1 + 10.2)/12 = 4.44 -> 4.4 (2nd).
    assert round((TWO_SEPTEMBER + TWO_OCTOBER) / 12, 1) == 5.6
    assert round((ONE_OCTOBER + ONE_NOVEMBER) / 12, 1) == 4.4
    two, one, three = report.branches
    assert (two.branch, two.score, two.rank) == (TWO, 5.6, 1)
    assert two.monthly == [0.0] * 8 + [TWO_SEPTEMBER, TWO_OCTOBER, 0.0, 0.0]
    assert (one.branch, one.score, one.rank) == (ONE, 4.4, 2)
    assert one.monthly == [0.0] * 9 + [ONE_OCTOBER, ONE_NOVEMBER, 0.0]
    assert (three.branch, three.score, three.rank, three.monthly) == (
        THREE,
        None,
        None,
        [None] * 12,
    )

    quiet = [MonthLine(f"2026-{month:02d}", 0.0, 0.0, 0.0) for month in range(1, 9)]
    assert report.months == [
        *quiet,
        # 赵强's 120 minutes; mean of 0.0 and 6.2
        MonthLine("2026-09", 2.0, 0.0, 3.1),
        # (1609 + 710 + 1805)/60 = 68.73 hours; 4 volunteer hours + 5; mean of 43.1 and 60.7
        MonthLine("2026-10", 68.7, 9.0, 51.9),
        # 100 minutes = 1.67 hours; mean of 10.2 and 0.0
        MonthLine("2026-11", 1.7, 0.0, 5.1),
        MonthLine("2026-12", 0.0, 0.0, 0.0),
    ]


# --- participation at the edge of the threshold, targets by calendar months ----------------

OCTOBER = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31))
NOVEMBER = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30))
OCTOBER_TO_16 = Period(dt.date(2026, 10, 1), dt.date(2026, 10, 16))  # a month in progress
Q4 = Period(dt.date(2026, 10, 1), dt.date(2026, 12, 31))  # 31 + 30 + 31 = 92 days, 3 months


def person(active_days: int, study_days: int = 0, **figures: int) -> MemberFigures:
    return MemberFigures(1, "1", "某", 1, ONE, active_days, study_days=study_days, **figures)


@pytest.mark.parametrize(
    ("period", "active_days", "study_days", "participates"),
    [
        # Whole month: ceil(15 × 1 × days/days) = 15, whatever the month's length.
        pytest.param(NOVEMBER, 30, 15, True, id="november-whole-15"),
        pytest.param(NOVEMBER, 30, 14, False, id="november-whole-14"),
        pytest.param(OCTOBER, 31, 15, True, id="october-whole-15"),
        pytest.param(OCTOBER, 31, 14, False, id="october-whole-14"),
        pytest.param(OCTOBER, 31, 16, True, id="october-whole-16"),
        # Joined for 15 of October's days: ceil(15 × 15/31) = ceil(225/31 = 7.26) = 8.
        pytest.param(OCTOBER, 15, 8, True, id="october-15-days-8"),
        pytest.param(OCTOBER, 15, 7, False, id="october-15-days-7"),
        # Joined for 16 of October's days: ceil(15 × 16/31) = ceil(240/31 = 7.74) = 8.
        pytest.param(OCTOBER, 16, 8, True, id="october-16-days-8"),
        pytest.param(OCTOBER, 16, 7, False, id="october-16-days-7"),
        # Joined for 16 of November's days: 15 × 16/30 = 240/30 = 8 exactly.
        pytest.param(NOVEMBER, 16, 8, True, id="november-16-days-8"),
        pytest.param(NOVEMBER, 16, 7, False, id="november-16-days-7"),
        # October cut at the 16th: 16 days of October's 31, ceil(15 × 1 × 16/31) = 8.
        pytest.param(OCTOBER_TO_16, 16, 8, True, id="october-to-16-8"),
        pytest.param(OCTOBER_TO_16, 16, 7, False, id="october-to-16-7"),
        # A whole quarter: ceil(15 × 3 × 92/92) = 45.
        pytest.param(Q4, 92, 45, True, id="quarter-whole-45"),
        pytest.param(Q4, 92, 44, False, id="quarter-whole-44"),
        # 76 days of the quarter (from Oct 17): ceil(45 × 76/92) = ceil(3420/92 = 37.17) = 38.
        pytest.param(Q4, 76, 38, True, id="quarter-76-days-38"),
        pytest.param(Q4, 76, 37, False, id="quarter-76-days-37"),
    ],
)
def test_participation_threshold(
    period: Period, active_days: int, study_days: int, participates: bool
) -> None:
    parts = branch_parts(
        [person(active_days, study_days)], 0, period, GOAL, ScoringRules(), weeks_in(period)
    )
    assert parts["participation"] == (1.0 if participates else 0.0)


@pytest.mark.parametrize(
    ("period", "volunteer_minutes", "note_chars", "materials", "share"),
    [
        # A whole month is worth 1: 2 h of 4, 1250 of 2500 characters, 2 of 4 materials.
        pytest.param(OCTOBER, 120, 1250, 2, 2 / 4, id="october"),
        pytest.param(NOVEMBER, 120, 1250, 2, 2 / 4, id="november"),
        # A whole quarter is worth 92/92 × 3 = 3: 6 h of 12, 3750 of 7500, 6 of 12.
        pytest.param(Q4, 360, 3750, 6, 6 / 12, id="quarter"),
        # Oct 1-16 is worth 16/31 × 1: 1 h of 4 × 16/31 = 64/31 h is 31/64;
        # 625 of 2500 × 16/31 characters is 625 × 31/40000 = 31/64; 1 of 4 × 16/31 likewise.
        pytest.param(OCTOBER_TO_16, 60, 625, 1, 31 / 64, id="october-to-16"),
    ],
)
def test_targets_by_calendar_months(
    period: Period, volunteer_minutes: int, note_chars: int, materials: int, share: float
) -> None:
    member = person(period.days, volunteer_minutes=volunteer_minutes, note_chars=note_chars)
    parts = branch_parts([member], materials, period, GOAL, ScoringRules(), weeks_in(period))
    assert parts["volunteer"] == pytest.approx(share)
    assert parts["notes"] == pytest.approx(share)
    assert parts["materials"] == pytest.approx(share)


@pytest.mark.parametrize(
    ("period", "active_days", "article_weeks", "share"),
    [
        # The quarter touches 14 ISO weeks; 69 of its 92 days (from Oct 24): 14 × 69/92 = 10.5,
        # which rounds half up to 11 (not to the even 10).
        pytest.param(Q4, 69, 11, 11 / 11, id="half-up-11-of-11"),
        pytest.param(Q4, 69, 10, 10 / 11, id="half-up-10-of-11"),
        # 23 days: 14 × 23/92 = 3.5 -> 4.
        pytest.param(Q4, 23, 3, 3 / 4, id="half-up-3-of-4"),
        # October's 5 weeks over 3 of its 31 days: 15/31 = 0.48 -> 0, but at least 1 week.
        pytest.param(OCTOBER, 3, 1, 1 / 1, id="at-least-one"),
        pytest.param(OCTOBER, 3, 0, 0 / 1, id="at-least-one-none"),
        # Whole October: 5 weeks.
        pytest.param(OCTOBER, 31, 2, 2 / 5, id="october-whole"),
    ],
)
def test_article_week_target(
    period: Period, active_days: int, article_weeks: int, share: float
) -> None:
    member = person(active_days, article_weeks=article_weeks)
    parts = branch_parts([member], 0, period, GOAL, ScoringRules(), weeks_in(period))
    assert parts["articles"] == pytest.approx(share)


# --- pure functions ------------------------------------------------------------------------


def test_longest_run_with_gaps() -> None:
    days = [oct_(d) for d in (1, 2, 3, 5, 10, 11, 12, 13, 31)]
    assert longest_run(days) == 4  # 10-13
    assert longest_run([]) == 0
    assert longest_run([oct_(7)]) == 1
    # Across a month's end: Sep 30, Oct 1, Oct 2.
    assert longest_run([dt.date(2026, 9, 30), oct_(1), oct_(2), oct_(4)]) == 3


def test_longest_run_on_unsorted_days() -> None:
    """The longest run of consecutive days does not depend on the order they are given in."""
    days = [oct_(d) for d in (13, 1, 11, 5, 2, 10, 31, 3, 12)]  # the runs 1-3 and 10-13
    assert longest_run(days) == 4
    assert longest_run([oct_(3), oct_(1), oct_(2)]) == 3
    # Repeats (two entries on one day) count once: 1, 2, 3 and 5.
    assert longest_run([oct_(2), oct_(1), oct_(2), oct_(3), oct_(1), oct_(5), oct_(5)]) == 3


def test_weeks_in() -> None:
    # Oct 1 2026 is a Thursday (week 40: Sep 28 - Oct 4); Oct 31 a Saturday (week 44).
    assert weeks_in(OCTOBER) == 44 - 40 + 1 == 5
    # Nov 1 is a Sunday (week 44), Nov 30 a Monday (week 49).
    assert weeks_in(NOVEMBER) == 49 - 44 + 1 == 6
    # 2026 starts on a Thursday, so it has 53 ISO weeks; Dec 31 (a Thursday) is in week 53.
    assert weeks_in(parse_period("2026Q4").span) == 53 - 40 + 1 == 14
    # Jul 1 (a Wednesday) is in week 27, Sep 30 (a Wednesday) in week 40.
    assert weeks_in(parse_period("2026Q3").span) == 40 - 27 + 1 == 14
    assert weeks_in(parse_period("2026").span) == 53
    assert weeks_in(Period(oct_(5), oct_(11))) == 1  # Monday to Sunday
    assert weeks_in(Period(oct_(4), oct_(5))) == 2  # Sunday, Monday


def test_parse_period() -> None:
    assert parse_period("2026-10") == ReportPeriod(PeriodKind.MONTH, 2026, 10)
    assert parse_period(" 2026q3 ") == ReportPeriod(PeriodKind.QUARTER, 2026, 3)
    assert parse_period("2026") == ReportPeriod(PeriodKind.YEAR, 2026, 1)
    assert parse_period("2026-10").span == Period(oct_(1), oct_(31))
    assert parse_period("2026Q4").span == Period(oct_(1), dt.date(2026, 12, 31))
    assert parse_period("2026Q4").previous() == ReportPeriod(PeriodKind.QUARTER, 2026, 3)
    assert parse_period("2026Q1").previous() == ReportPeriod(PeriodKind.QUARTER, 2025, 4)
    assert [m.label for m in parse_period("2026Q4").months()] == ["2026-10", "2026-11", "2026-12"]


@pytest.mark.parametrize("text", ["2026-13", "2026Q5", "2026-00", "2026Q0", "26-10", ""])
def test_parse_period_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text)


def test_just_ended() -> None:
    assert just_ended(PeriodKind.MONTH, dt.date(2026, 11, 1)) == parse_period("2026-10")
    assert just_ended(PeriodKind.MONTH, dt.date(2027, 1, 1)) == parse_period("2026-12")
    assert just_ended(PeriodKind.QUARTER, dt.date(2026, 10, 1)) == parse_period("2026Q3")
    assert just_ended(PeriodKind.QUARTER, dt.date(2027, 1, 1)) == parse_period("2026Q4")
    assert just_ended(PeriodKind.YEAR, dt.date(2027, 1, 1)) == parse_period("2026")
