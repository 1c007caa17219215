"""The points rules, from `content/rules.toml` or the file in QIYI_RULES_FILE."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationError

from bot.settings import ConfigError

DEFAULT_RULES_FILE = Path(__file__).parent.parent / "content" / "rules.toml"


class PointsRules(BaseModel, frozen=True):
    study_block_minutes: int = Field(30, ge=1)
    study_points: int = Field(1, ge=0)
    study_daily_cap: int = Field(4, ge=0)
    goal_bonus: int = Field(2, ge=0)
    streak_days: int = Field(7, ge=1)
    streak_bonus: int = Field(5, ge=0)
    volunteer_per_hour: int = Field(2, ge=0)
    quiz_correct: int = Field(2, ge=0)
    note_min_chars: int = Field(100, ge=1)
    note_points: int = Field(1, ge=0)
    article_min_chars: int = Field(800, ge=1)
    article_bonus: int = Field(5, ge=0)


GradeName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10)]
Share = Annotated[float, Field(ge=0, le=1)]


class ScoringRules(BaseModel, frozen=True):
    weight_participation: float = Field(20, ge=0)
    weight_study: float = Field(20, ge=0)
    weight_goal_days: float = Field(15, ge=0)
    weight_volunteer: float = Field(10, ge=0)
    weight_notes: float = Field(10, ge=0)
    weight_articles: float = Field(10, ge=0)
    weight_quiz: float = Field(5, ge=0)
    weight_materials: float = Field(10, ge=0)
    weight_grading: float = Field(10, ge=0)
    weight_organisation: float = Field(10, ge=0)
    participation_min_days: int = Field(15, ge=1, le=31)
    volunteer_hours_per_member: float = Field(4, gt=0)
    note_chars_per_member: int = Field(2500, gt=0)
    materials_per_month: int = Field(4, gt=0)
    # 组织生活: how often each kind of meeting is expected (支部工作条例), a year.
    general_meetings_per_year: int = Field(4, ge=0)
    committee_meetings_per_year: int = Field(12, ge=0)
    group_meetings_per_year: int = Field(12, ge=0)
    party_days_per_year: int = Field(12, ge=0)
    lectures_per_year: int = Field(4, ge=0)

    def meetings_per_year(self) -> dict[str, int]:
        """Activity kind -> meetings of it expected a year."""
        return {
            "general_meeting": self.general_meetings_per_year,
            "committee": self.committee_meetings_per_year,
            "group_meeting": self.group_meetings_per_year,
            "party_day": self.party_days_per_year,
            "lecture": self.lectures_per_year,
        }

    # The office's grade of a month's materials (月打分): one of `grade_levels` (the share
    # of the grading part each counts for), or a number from 0 to 100.
    grading: Literal["levels", "number"] = "levels"
    grade_levels: dict[GradeName, Share] = Field(
        default_factory=lambda: {"优": 1.0, "良": 0.8, "中": 0.6, "差": 0.3}, min_length=1
    )

    def weights(self) -> dict[str, float]:
        """Part name -> weight, in the order reports show them."""
        return {
            name.removeprefix("weight_"): value
            for name, value in self.model_dump().items()
            if name.startswith("weight_")
        }


class Rules(BaseModel, frozen=True):
    points: PointsRules = PointsRules()
    scoring: ScoringRules = ScoringRules()


def load_rules(path: Path | None = None) -> Rules:
    path = path or DEFAULT_RULES_FILE
    try:
        with path.open("rb") as file:
            return Rules.model_validate(tomllib.load(file))
    except FileNotFoundError:
        raise ConfigError(f"QIYI_RULES_FILE: no such file {path}") from None
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"QIYI_RULES_FILE: {path} is not valid: {first}") from None
