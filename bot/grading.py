"""月打分 and 关账 as operations every door calls (the console's 资料 page, `qiyi month`):
the office grades a branch's materials of a month, closes a month (its figures frozen) and
reopens it with a reason. Each writes its audit row in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import json
import re
from enum import StrEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.reports.bulletins import Context, month_report
from bot.reports.periods import PeriodKind, ReportPeriod
from bot.rules import ScoringRules
from data import audit, closed_months, grades
from data.models import ClosedMonth, FrozenBranchScore, MonthGrade

MAX_GRADE = 10
MAX_COMMENT = 500
MAX_REASON = 300
_NUMBER = re.compile(r"\d{1,3}(?:\.\d)?")  # 0-100, one decimal at most


class Refused(Exception):
    """An expected refusal; `reason` names it for the door to explain in its own words."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class Reason(StrEnum):
    NOT_A_GRADE = "not_a_grade"  # not one of the levels, or not a number 0-100
    COMMENT_TOO_LONG = "comment_too_long"
    CLOSED = "closed"  # the month is closed: its grades stay as they are
    NOT_ENDED = "not_ended"  # a month is closed once it has ended
    ALREADY_CLOSED = "already_closed"
    NOT_CLOSED = "not_closed"
    NO_REASON = "no_reason"  # reopening needs a reason
    REASON_TOO_LONG = "reason_too_long"


def parse_grade(text: str, rules: ScoringRules) -> tuple[str, float] | None:
    """The grade as shown and the share of the grading part it earns: a level of
    `grade_levels` ("优" -> 1.0) or, under `grading = "number"`, 0-100 ("85" -> 0.85).
    None for anything else."""
    text = text.strip()
    if len(text) > MAX_GRADE:
        return None
    if rules.grading == "levels":
        return (text, rules.grade_levels[text]) if text in rules.grade_levels else None
    if not _NUMBER.fullmatch(text) or float(text) > 100:
        return None
    number = float(text)
    return (f"{number:g}", number / 100)


def month_of(first: dt.date) -> str:
    return first.strftime("%Y-%m")


async def give_grade(
    session: AsyncSession,
    actor: audit.Actor,
    *,
    branch_id: int,
    month: dt.date,
    text: str,
    comment: str,
    rules: ScoringRules,
    at: dt.datetime,
) -> MonthGrade:
    """Give or change the branch's grade for the month (its first day); refused while the
    month is closed."""
    parsed = parse_grade(text, rules)
    if parsed is None:
        raise Refused(Reason.NOT_A_GRADE)
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise Refused(Reason.COMMENT_TOO_LONG)
    if await closed_months.closed(session, month) is not None:
        raise Refused(Reason.CLOSED)
    before = await grades.grade_of(session, branch_id, month)
    snapshot = {"grade": before.grade, "comment": before.comment} if before else None
    grade, value = parsed
    given = await grades.put(
        session,
        branch_id,
        month,
        grade=grade,
        value=value,
        comment=comment,
        grader_id=actor.member_id,
        grader=actor.label,
        at=at,
    )
    await audit.record(
        session,
        actor,
        "month.grade",
        object_type="branch",
        object_id=f"{branch_id}:{month_of(month)}",
        branch_id=branch_id,
        at=at,
        before=snapshot,
        after={"month": month_of(month), "grade": grade, "comment": comment},
    )
    return given


async def close_month(
    session: AsyncSession,
    actor: audit.Actor,
    period: ReportPeriod,
    context: Context,
    *,
    today: dt.date,
    at: dt.datetime,
) -> None:
    """Freeze the ended month's figures (scores, parts, ranks, the members' figures): its
    reports read them from now on, and its grades can no longer change."""
    assert period.kind is PeriodKind.MONTH
    first = period.span.first
    if period.span.last >= today:
        raise Refused(Reason.NOT_ENDED)
    if await closed_months.closed(session, first) is not None:
        raise Refused(Reason.ALREADY_CLOSED)
    report = await month_report(session, period, context)
    scores = [
        FrozenBranchScore(
            month=first,
            branch_id=branch.branch_id,
            branch=branch.branch,
            members=branch.members,
            score=branch.score,
            rank=branch.rank,
            parts=json.dumps(branch.parts),
        )
        for branch in report.branches
    ]
    closing = ClosedMonth(month=first, closed_at=at, closed_by=actor.label[:120], figures="")
    await closed_months.freeze(session, closing, scores, report.members, report.weights)
    await audit.record(
        session,
        actor,
        "month.close",
        object_type="month",
        object_id=month_of(first),
        branch_id=None,
        at=at,
        after={b.branch: b.score for b in report.branches},
    )


async def reopen_month(
    session: AsyncSession, actor: audit.Actor, period: ReportPeriod, reason: str, at: dt.datetime
) -> None:
    """Reopen a closed month: its frozen figures are dropped (its reports compute anew) and
    its grades may change again. The reason is required and kept in the audit log."""
    assert period.kind is PeriodKind.MONTH
    first = period.span.first
    reason = reason.strip()
    if not reason:
        raise Refused(Reason.NO_REASON)
    if len(reason) > MAX_REASON:
        raise Refused(Reason.REASON_TOO_LONG)
    if await closed_months.closed(session, first) is None:
        raise Refused(Reason.NOT_CLOSED)
    frozen = await closed_months.frozen_scores(session, first)
    await closed_months.reopen(session, first)
    await audit.record(
        session,
        actor,
        "month.reopen",
        object_type="month",
        object_id=month_of(first),
        branch_id=None,
        at=at,
        before={row.branch: row.score for row in frozen},
        after={"reason": reason},
    )
