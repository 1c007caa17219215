"""A branch's monthly score: the weighted mean of measured parts, each between 0 and 1.

The parts and their weights come from `[scoring]` in the rules file; every part is kept
next to the score so a secretary can see why.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.rules import ScoringRules
from data.figures import MemberFigures, Period
from data.meeting_figures import MeetingFigures

PARTS = (
    "participation",
    "study",
    "goal_days",
    "volunteer",
    "notes",
    "articles",
    "quiz",
    "materials",
    "grading",  # the office's grade of the month's materials (月打分); "待评" until given
    "organisation",  # 组织生活: meetings held and attended (三会一课, 主题党日)
)
GRADING = "grading"


@dataclass
class BranchScore:
    branch_id: int
    branch: str
    members: int
    parts: dict[str, float] = field(default_factory=dict)  # a part not given yet is absent
    score: float | None = None  # None: no members, not ranked
    rank: int | None = None


def shared_ranks(values: Sequence[object]) -> list[int]:
    """The ranks of values already sorted best first, where equal values share a rank and
    the next one counts the places taken (standard competition ranking: 1, 1, 3)."""
    ranks: list[int] = []
    for index, value in enumerate(values):
        ranks.append(ranks[-1] if index and value == values[index - 1] else index + 1)
    return ranks


def _mean(values: Iterable[float]) -> float:
    found = list(values)
    return sum(found) / len(found) if found else 0.0


def _share(value: float, target: float) -> float:
    return min(1.0, value / target) if target > 0 else 0.0


def participation_threshold(rules: ScoringRules, period: Period, active_days: int) -> int:
    """Study days that count as participating: `participation_min_days` a month, in proportion
    to the days the member belonged (integer arithmetic: 15 x 16/30 is exactly 8)."""
    months = calendar_months(period)
    days = calendar_days(period)
    return -(-rules.participation_min_days * months * active_days // days)


def calendar_months(period: Period) -> int:
    return (period.last.year - period.first.year) * 12 + period.last.month - period.first.month + 1


def calendar_days(period: Period) -> int:
    """Days of the calendar months the period touches."""
    first = period.first.replace(day=1)
    last_day = calendar.monthrange(period.last.year, period.last.month)[1]
    return (period.last.replace(day=last_day) - first).days + 1


def _round(value: float) -> int:
    return math.floor(value + 0.5)


def branch_parts(
    people: list[MemberFigures],
    materials: int,
    period: Period,
    goal: int,
    rules: ScoringRules,
    weeks: int,
    meetings: MeetingFigures | None = None,
) -> dict[str, float]:
    """Each part of the score between 0 and 1, over the branch's members; 组织生活 only
    when `meetings` are given (a period with meetings)."""
    worth = period.days / calendar_days(period) * calendar_months(period)  # months of targets
    members = len(people)
    volunteer_hours = sum(p.volunteer_minutes for p in people) / 60
    answered = sum(p.quiz_answered for p in people)
    return {
        "participation": _mean(
            1.0 if p.study_days >= participation_threshold(rules, period, p.active_days) else 0.0
            for p in people
        ),
        "study": _mean(_share(p.minutes / p.active_days, goal) for p in people),
        "goal_days": _mean(p.goal_days / p.active_days for p in people),
        "volunteer": _share(volunteer_hours / members, rules.volunteer_hours_per_member * worth),
        "notes": _share(
            sum(p.note_chars for p in people) / members, rules.note_chars_per_member * worth
        ),
        "articles": _mean(
            _share(p.article_weeks, max(1, _round(weeks * p.active_days / period.days)))
            for p in people
        ),
        "quiz": sum(p.quiz_correct for p in people) / answered if answered else 0.0,
        "materials": _share(materials, rules.materials_per_month * worth),
    } | ({} if meetings is None else {"organisation": organisation(meetings, rules, worth)})


def organisation(meetings: MeetingFigures, rules: ScoringRules, worth: float) -> float:
    """组织生活: half the share of the expected meetings held (each kind capped at 1, the
    mean over the kinds expected), half the attendance of those expected, leave apart."""
    expected = {kind: n * worth / 12 for kind, n in rules.meetings_per_year().items() if n}
    held = _mean(_share(meetings.held.get(kind, 0), due) for kind, due in expected.items())
    due = meetings.expected - meetings.leave
    attendance = meetings.present / due if due > 0 else 0.0
    return (held + attendance) / 2


def weeks_in(period: Period) -> int:
    """ISO weeks the period touches."""
    days = (period.first + dt.timedelta(days=offset) for offset in range(period.days))
    return len({day.isocalendar()[:2] for day in days})


def weighted_score(parts: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """100 × the weighted mean of the parts there are, rounded to 0.1. A part not given yet
    (the grading until the office grades) is left out and the others' weights renormalised,
    so an ungraded month scores what it scored before the grading existed."""
    total_weight = sum(weights[part] for part in parts) or 1.0
    weighted = sum(weights[part] * value for part, value in parts.items())
    return round(100 * weighted / total_weight, 1)


def score_branches(
    figures: dict[int, MemberFigures],
    branches: dict[int, str],
    materials: dict[int, int],
    period: Period,
    goal: int,
    rules: ScoringRules,
    meetings: dict[int, MeetingFigures] | None = None,
    grades: Mapping[int, float] | None = None,
) -> list[BranchScore]:
    """Every branch's parts and score, ranked (best first; branches without members last).

    With `meetings` (some branch held a meeting in the period) every branch is measured on
    组织生活; without, that part is left out and the other weights renormalised.
    `grades`: branch id -> the grading part (0..1) of the branches graded so far."""
    by_branch: dict[int, list[MemberFigures]] = {}
    for person in figures.values():
        by_branch.setdefault(person.branch_id, []).append(person)
    weights = rules.weights()
    grades = grades or {}
    weeks = weeks_in(period)
    scores: list[BranchScore] = []
    for branch_id, name in branches.items():
        people = by_branch.get(branch_id, [])
        entry = BranchScore(branch_id, name, len(people))
        if people:
            held = MeetingFigures.of(meetings, branch_id) if meetings else None
            entry.parts = branch_parts(
                people, materials.get(branch_id, 0), period, goal, rules, weeks, held
            )
            if branch_id in grades:
                entry.parts[GRADING] = grades[branch_id]
            entry.score = weighted_score(entry.parts, weights)
        scores.append(entry)
    ranked = sorted(scores, key=lambda s: (s.score is None, -(s.score or 0.0), s.branch))
    scored = [entry for entry in ranked if entry.score is not None]
    for entry, rank in zip(scored, shared_ranks([e.score for e in scored]), strict=True):
        entry.rank = rank  # equal scores share a place, the next one skips: 1, 1, 3
    return ranked
