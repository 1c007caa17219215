"""Micro-lessons and micro-news: Markdown files with YAML front matter under `content/`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError, field_validator

from data.models import Article, ArticleKind

CONTENT = Path(__file__).parent
FOLDERS = {ArticleKind.LESSON: "lessons", ArticleKind.NEWS: "news"}


class ContentError(ValueError):
    """A content file is not valid; the message names the file and the problem."""


class Quiz(BaseModel):
    question: str
    options: dict[str, str]
    answer: str
    explanation: str = ""

    @field_validator("options")
    @classmethod
    def _letters(cls, value: dict[str, str]) -> dict[str, str]:
        if not 2 <= len(value) <= 6 or any(k not in "ABCDEF" or len(k) != 1 for k in value):
            raise ValueError("options are 2 to 6 of the letters A-F")
        return value


class FrontMatter(BaseModel):
    slug: str
    title: str
    summary: str = ""
    publish_at: dt.datetime
    url: str = ""
    quiz: Quiz | None = None

    @field_validator("publish_at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("publish_at needs a UTC offset, e.g. 2026-11-02T07:30:00+08:00")
        return value


def read_file(path: Path, kind: ArticleKind) -> Article:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        raise ContentError(f"{path}: the file must start with front matter between '---' lines")
    try:
        _, header, body = text.split("---", 2)
        meta = FrontMatter.model_validate(yaml.safe_load(header))
    except (ValueError, yaml.YAMLError, ValidationError) as exc:
        raise ContentError(f"{path}: {str(exc).splitlines()[0]}") from None
    quiz = meta.quiz
    if quiz is not None and quiz.answer not in quiz.options:
        raise ContentError(f"{path}: the quiz answer {quiz.answer!r} is not one of the options")
    return Article(
        slug=meta.slug,
        kind=kind.value,
        title=meta.title,
        summary=meta.summary,
        body=body.strip(),
        url=meta.url,
        publish_at=meta.publish_at,
        quiz_question=quiz.question if quiz else "",
        quiz_options=json.dumps(quiz.options, ensure_ascii=False) if quiz else "",
        quiz_answer=quiz.answer if quiz else "",
        quiz_explanation=quiz.explanation if quiz else "",
    )


def read_all(root: Path = CONTENT) -> list[Article]:
    """Every lesson and news file under `root`; a bad file raises `ContentError`."""
    found: list[Article] = []
    for kind, folder in FOLDERS.items():
        for path in sorted((root / folder).glob("*.md")):
            found.append(read_file(path, kind))
    slugs = [article.slug for article in found]
    duplicates = sorted({slug for slug in slugs if slugs.count(slug) > 1})
    if duplicates:
        raise ContentError(f"slug used by more than one file: {', '.join(duplicates)}")
    return found
