"""月打分 and 关账 on the hand-built October of `test_scores`: the grading part with its weight
(待评 until given), a closed month's frozen figures, reopening with a reason, the audit rows.

Today's October scores (no grade): 第一 43.097 -> 43.1, 第二 60.662 -> 60.7 (`test_scores`).
The shipped weights of the measured parts add up to 100; the grading's is 10, so a graded
branch scores (100 × measured mean + 10 × grade) / 110.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import grading
from bot.reports.bulletins import Context, MonthReport, month_report, quarter_report
from bot.reports.documents import render_markdown
from bot.reports.periods import parse_period
from bot.rules import Rules, ScoringRules, load_rules
from data import audit, closed_months, grades
from data.db import Sessions, session_factory, transaction
from data.models import Branch, Member, StudyEntry
from tests.conftest import SHANGHAI
from tests.reports.test_scores import (
    GOAL,
    ONE,
    ONE_OCTOBER,
    ONE_PARTS,
    TWO,
    TWO_OCTOBER,
    TWO_PARTS,
    Ids,
    build,
    weighted,
)

OCTOBER = parse_period("2026-10")
FIRST = dt.date(2026, 10, 1)
NOVEMBER_5 = dt.date(2026, 11, 5)
AT = dt.datetime(2026, 11, 5, 10, 0, tzinfo=SHANGHAI)
OFFICE = audit.Actor(audit.Door.CONSOLE, "刘洋（9001）", "127.0.0.1")
CLI = audit.Actor(audit.Door.CLI, "cli:root@host", "host")

# 第一 graded 优 (1.0): (43.097 + 10 × 1.0) / 110 × 100 = 48.27 -> 48.3.
ONE_EXCELLENT = 48.3
# 第一 graded 85 (number grading, 0.85): (43.097 + 8.5) / 110 × 100 = 46.91 -> 46.9.
ONE_85 = 46.9
# 第二 graded 差 (0.3): (60.662 + 3) / 110 × 100 = 57.87 -> 57.9.
TWO_POOR = 57.9


def context(rules: Rules | None = None) -> Context:
    return Context(SHANGHAI, GOAL, rules or load_rules())


@pytest.fixture
async def october(engine: AsyncEngine) -> tuple[Sessions, Ids]:
    sessions = session_factory(engine)
    return sessions, await build(sessions)


def test_hand_graded_scores() -> None:
    assert round(weighted({**ONE_PARTS, "grading": 1.0}), 1) == ONE_EXCELLENT
    assert round(weighted({**ONE_PARTS, "grading": 0.85}), 1) == ONE_85
    assert round(weighted({**TWO_PARTS, "grading": 0.3}), 1) == TWO_POOR


@pytest.mark.parametrize(
    ("text", "rules", "expected"),
    [
        ("优", ScoringRules(), ("优", 1.0)),
        (" 良 ", ScoringRules(), ("良", 0.8)),
        ("差", ScoringRules(), ("差", 0.3)),
        ("85", ScoringRules(), None),  # levels: a number is no grade
        ("甲", ScoringRules(), None),
        ("", ScoringRules(), None),
        ("85", ScoringRules(grading="number"), ("85", 0.85)),
        ("0", ScoringRules(grading="number"), ("0", 0.0)),
        ("100", ScoringRules(grading="number"), ("100", 1.0)),
        ("92.5", ScoringRules(grading="number"), ("92.5", 0.925)),
        ("100.1", ScoringRules(grading="number"), None),
        ("101", ScoringRules(grading="number"), None),
        ("-1", ScoringRules(grading="number"), None),
        ("1e2", ScoringRules(grading="number"), None),
        ("nan", ScoringRules(grading="number"), None),
        ("优", ScoringRules(grading="number"), None),
        ("9" * 5000, ScoringRules(grading="number"), None),
    ],
)
def test_parse_grade(text: str, rules: ScoringRules, expected: tuple[str, float] | None) -> None:
    parsed = grading.parse_grade(text, rules)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert parsed[0] == expected[0] and parsed[1] == pytest.approx(expected[1])


async def give(sessions: Sessions, branch: int, text: str, rules: Rules | None = None) -> None:
    async with transaction(sessions) as session:
        await grading.give_grade(
            session,
            OFFICE,
            branch_id=branch,
            month=FIRST,
            text=text,
            comment="资料齐全",
            rules=(rules or load_rules()).scoring,
            at=AT,
        )


async def report_of(sessions: Sessions, rules: Rules | None = None) -> MonthReport:
    async with sessions() as session:
        return await month_report(session, OCTOBER, context(rules))


async def test_without_a_grade_the_score_is_todays(october: tuple[Sessions, Ids]) -> None:
    sessions, _ = october
    report = await report_of(sessions)
    assert [(b.branch, b.score, b.rank) for b in report.branches[:2]] == [
        (TWO, TWO_OCTOBER, 1),
        (ONE, ONE_OCTOBER, 2),
    ]
    assert all("grading" not in b.parts for b in report.branches)
    text = render_markdown(report)
    assert f"| 1 | {TWO} | 1 | {TWO_OCTOBER} |" in text and "| 待评 |" in text
    assert "月打分“待评”的支部" in text


async def test_a_level_grade_counts_with_its_weight(october: tuple[Sessions, Ids]) -> None:
    sessions, ids = october
    await give(sessions, ids.branches[ONE], "优")
    await give(sessions, ids.branches[TWO], "差")

    report = await report_of(sessions)

    two, one = report.branches[:2]
    assert (two.branch, two.score, two.rank, two.parts["grading"]) == (TWO, TWO_POOR, 1, 0.3)
    assert (one.branch, one.score, one.rank, one.parts["grading"]) == (ONE, ONE_EXCELLENT, 2, 1.0)
    text = render_markdown(report)
    assert "| 100% |" in text and "待评" not in text.split("满分")[0]


async def test_a_number_grade(october: tuple[Sessions, Ids]) -> None:
    sessions, ids = october
    rules = Rules(scoring=ScoringRules(grading="number"))
    await give(sessions, ids.branches[ONE], "85", rules)

    report = await report_of(sessions, rules)

    one = next(b for b in report.branches if b.branch == ONE)
    assert (one.score, one.parts["grading"]) == (ONE_85, pytest.approx(0.85))
    two = next(b for b in report.branches if b.branch == TWO)
    assert two.score == TWO_OCTOBER  # 待评: the other parts alone
    with pytest.raises(grading.Refused) as refused:
        await give(sessions, ids.branches[ONE], "优", rules)
    assert refused.value.reason is grading.Reason.NOT_A_GRADE


async def close(sessions: Sessions, today: dt.date = NOVEMBER_5) -> None:
    async with transaction(sessions) as session:
        await grading.close_month(session, CLI, OCTOBER, context(), today=today, at=AT)


async def reopen(sessions: Sessions, reason: str) -> None:
    async with transaction(sessions) as session:
        await grading.reopen_month(session, OFFICE, OCTOBER, reason, AT)


async def add_late_study(sessions: Sessions, ids: Ids) -> None:
    """王芳 (第一, nothing in October) records 120 minutes on October 20 after the closing."""
    async with transaction(sessions) as session:
        session.add(
            StudyEntry(
                member_id=ids.members["1003"],
                day=dt.date(2026, 10, 20),
                minutes=120,
                created_at=AT,
            )
        )


async def test_a_closed_month_keeps_its_frozen_figures(october: tuple[Sessions, Ids]) -> None:
    sessions, ids = october
    await give(sessions, ids.branches[ONE], "优")
    before = await report_of(sessions)
    await close(sessions)

    await add_late_study(sessions, ids)
    frozen = await report_of(sessions)

    assert frozen.closed_at == AT
    assert frozen.branches == before.branches  # scores, parts, ranks: as when closed
    assert frozen.members == before.members
    assert frozen.weights == before.weights
    assert (frozen.branches[1].branch, frozen.branches[1].score) == (ONE, ONE_EXCELLENT)
    wang = next(m for m in frozen.members if m.roster_id == "1003")
    assert wang.minutes == 0  # the late 120 minutes are not in the closed month
    assert render_markdown(frozen).startswith("# 2026年10月 支部评分（已关账·终版）")
    async with sessions() as session:
        quarter = await quarter_report(session, parse_period("2026Q4"), context())
    one = next(row for row in quarter.branches if row.branch == ONE)
    assert one.monthly[0] == ONE_EXCELLENT  # the quarter uses the frozen October

    # A grade cannot change while the month is closed.
    with pytest.raises(grading.Refused) as refused:
        await give(sessions, ids.branches[ONE], "差")
    assert refused.value.reason is grading.Reason.CLOSED
    async with sessions() as session:
        kept = await grades.grade_of(session, ids.branches[ONE], FIRST)
    assert kept is not None and kept.grade == "优"


async def test_reopening_needs_a_reason_and_computes_anew(october: tuple[Sessions, Ids]) -> None:
    sessions, ids = october
    await close(sessions)
    await add_late_study(sessions, ids)
    with pytest.raises(grading.Refused) as refused:
        await reopen(sessions, "   ")
    assert refused.value.reason is grading.Reason.NO_REASON
    assert (await report_of(sessions)).branches[1].score == ONE_OCTOBER  # still frozen

    await reopen(sessions, "补录王芳10月20日的学习记录")

    report = await report_of(sessions)
    assert report.closed_at is None
    one = next(b for b in report.branches if b.branch == ONE)
    # 王芳 now studied 120 minutes on one day (a goal day): study and goal days move up.
    assert one.score is not None and one.score > ONE_OCTOBER
    async with sessions() as session:
        assert await closed_months.frozen_scores(session, FIRST) == []
    await give(sessions, ids.branches[ONE], "良")  # open again: grades may change


async def test_closing_is_refused_before_the_month_ends_and_twice(
    october: tuple[Sessions, Ids],
) -> None:
    sessions, _ = october
    for today in (dt.date(2026, 10, 31), dt.date(2026, 10, 15)):
        with pytest.raises(grading.Refused) as refused:
            await close(sessions, today)
        assert refused.value.reason is grading.Reason.NOT_ENDED
    await close(sessions, dt.date(2026, 11, 1))
    with pytest.raises(grading.Refused) as refused:
        await close(sessions)
    assert refused.value.reason is grading.Reason.ALREADY_CLOSED
    await reopen(sessions, "重算")
    with pytest.raises(grading.Refused) as refused:
        await reopen(sessions, "再开一次")
    assert refused.value.reason is grading.Reason.NOT_CLOSED


async def test_grade_close_and_reopen_are_audited(october: tuple[Sessions, Ids]) -> None:
    sessions, ids = october
    await give(sessions, ids.branches[ONE], "良")
    await give(sessions, ids.branches[ONE], "优")
    await close(sessions)
    await reopen(sessions, "补录数据")

    async with sessions() as session:
        rows = list(reversed(await audit.entries(session)))
    assert [(r.action, r.actor, r.door) for r in rows] == [
        ("month.grade", "刘洋（9001）", "console"),
        ("month.grade", "刘洋（9001）", "console"),
        ("month.close", "cli:root@host", "cli"),
        ("month.reopen", "刘洋（9001）", "console"),
    ]
    first, second, closing, reopening = rows
    assert (first.object_id, first.branch_id) == (f"{ids.branches[ONE]}:2026-10", ids.branches[ONE])
    assert first.before == "" and '"grade": "良"' in first.after
    assert '"grade": "良"' in second.before and '"grade": "优"' in second.after
    assert closing.object_id == "2026-10" and f'"{ONE}": 48.3' in closing.after
    assert f'"{ONE}": 48.3' in reopening.before and "补录数据" in reopening.after


async def test_ties_share_a_rank_when_graded_and_when_frozen(engine: AsyncEngine) -> None:
    """Three branches of one idle member each: 优, 优, 良 score 10 × 1.0 / 110 = 9.1 twice and
    10 × 0.8 / 110 = 7.3; ranks 1, 1, 3, computed and frozen."""
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        branches = [Branch(name=name) for name in ("甲支部", "乙支部", "丙支部")]
        session.add_all(branches)
        await session.flush()
        for index, branch in enumerate(branches):
            assert branch.id is not None
            session.add(
                Member(
                    roster_id=f"{index}",
                    name=f"成员{index}",
                    branch_id=branch.id,
                    joined_at=dt.datetime(2026, 1, 1, tzinfo=SHANGHAI),
                )
            )
    ids = [branch.id for branch in branches]
    for branch_id, grade in zip(ids, ("优", "优", "良"), strict=True):
        assert branch_id is not None
        await give(sessions, branch_id, grade)
    # Equal scores in the order of their names (乙 U+4E59 before 甲 U+7532).
    expected = [("乙支部", 9.1, 1), ("甲支部", 9.1, 1), ("丙支部", 7.3, 3)]
    assert round(100 * 10 * 1.0 / 110, 1) == 9.1 and round(100 * 10 * 0.8 / 110, 1) == 7.3

    computed = await report_of(sessions)
    await close(sessions)
    frozen = await report_of(sessions)

    for report in (computed, frozen):
        assert [(b.branch, b.score, b.rank) for b in report.branches] == expected
    text = render_markdown(frozen)
    assert "| 1 | 甲支部 |" in text and "| 1 | 乙支部 |" in text and "| 3 | 丙支部 |" in text
