"""Micro-lessons, micro-news and micro-videos: Markdown files with YAML front matter under
`content/` (lessons/, news/, videos/)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, field_validator

from data.models import Article, ArticleKind

CONTENT = Path(__file__).parent
FOLDERS = {ArticleKind.LESSON: "lessons", ArticleKind.NEWS: "news", ArticleKind.VIDEO: "videos"}


class ContentError(ValueError):
    """A content file is not valid; the message names the file, the line and the problem."""


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


FENCE = "---"
FIRST_KEY_LINE = 2  # the front matter's first `key: value` line, after the opening fence

# `key: value` (or `- key: value`), the colon ASCII or full-width: a Chinese input method
# types `：`, which YAML would read as part of a plain text, not as a key's colon.
KEY_LINE = re.compile(
    r"(?P<lead>[ \t]*(?:-[ \t]+)?)(?P<key>[A-Za-z_][A-Za-z0-9_-]*)[ \t]*(?P<colon>[:：])"
    r"[ \t]*(?P<value>.*)"
)
FLOW_KEY = re.compile(r"(?P<before>[{,][ \t]*)(?P<key>[A-Za-z0-9_-]+)[ \t]*：[ \t]*")
BLOCK_TEXT = re.compile(r"[|>][-+0-9]*")  # `summary: |`: the lines below are text


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def ascii_key_colons(lines: list[str]) -> list[str]:
    """The front matter's lines with a full-width `：` after a key read as `:` — at the start
    of a line and in a `{A：五项, B：六项}` mapping — and nothing else changed: a `：` in a
    value stays, and so do the lines of a `|` or `>` block of text."""
    read: list[str] = []
    text_below: int | None = None  # the indent of the key whose block of text follows
    for line in lines:
        if text_below is not None and (not line.strip() or _indent(line) > text_below):
            read.append(line)
            continue
        text_below = None
        found = KEY_LINE.fullmatch(line)
        if found is None:
            read.append(line)
            continue
        value = found["value"]
        if BLOCK_TEXT.fullmatch(value.strip()):
            text_below = _indent(line)
        if value.startswith("{"):
            value = FLOW_KEY.sub(lambda key: f"{key['before']}{key['key']}: ", value)
        if found["colon"] == "：" or value != found["value"]:
            line = f"{found['lead']}{found['key']}: {value}".rstrip()
        read.append(line)
    return read


def _line_of(lines: list[str], path: tuple[Any, ...]) -> int:
    """The file's line number of the key at `path` (e.g. ("quiz", "answer")), as far down it
    as it is found; the opening fence's line when not even the first key is there."""
    line, start, indent = 1, 0, -1
    for key in path:
        if not isinstance(key, str):
            continue
        for index in range(start, len(lines)):
            found = KEY_LINE.fullmatch(lines[index])
            if found and found["key"] == key and _indent(lines[index]) > indent:
                line, start, indent = index + FIRST_KEY_LINE, index + 1, _indent(lines[index])
                break
        else:
            break
    return line


def _front_matter(path: Path, text: str) -> tuple[list[str], str]:
    """The front matter's lines (between the `---` lines) and the body after them."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != FENCE:
        raise ContentError(f"{path}:1: the file must start with front matter between '---' lines")
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == FENCE:
            return lines[1:index], "\n".join(lines[index + 1 :])
    raise ContentError(f"{path}:1: the front matter opened here has no closing '---' line")


def _yaml_problem(path: Path, error: yaml.YAMLError) -> ContentError:
    # Where the construct began (an unclosed bracket) says more than where parsing gave up
    # (often the end of the front matter).
    mark = getattr(error, "context_mark", None) or getattr(error, "problem_mark", None)
    line = f":{mark.line + FIRST_KEY_LINE}" if mark is not None else ""
    words = [getattr(error, "context", None), getattr(error, "problem", None)]
    what = ": ".join(word for word in words if word) or str(error).splitlines()[0]
    return ContentError(f"{path}{line}: {what}")


def _invalid(path: Path, lines: list[str], error: ValidationError) -> ContentError:
    first = error.errors()[0]
    where = tuple(first["loc"])
    name = ".".join(str(part) for part in where)
    if first["type"] == "missing":
        return ContentError(f"{path}:1: the front matter has no {name}")
    reason = str(first["msg"]).removeprefix("Value error, ")
    return ContentError(f"{path}:{_line_of(lines, where)}: {name}: {reason}")


def read_file(path: Path, kind: ArticleKind) -> Article:
    try:
        text = path.read_text(encoding="utf-8-sig")  # Notepad starts UTF-8 with a BOM
    except UnicodeDecodeError:
        raise ContentError(f"{path}: not UTF-8 text (save it as UTF-8)") from None
    header, body = _front_matter(path, text)
    lines = ascii_key_colons(header)
    try:
        loaded = yaml.safe_load("\n".join(lines))
    except yaml.YAMLError as error:
        raise _yaml_problem(path, error) from None
    if not isinstance(loaded, dict):
        raise ContentError(f"{path}:{FIRST_KEY_LINE}: the front matter is not `key: value` lines")
    try:
        meta = FrontMatter.model_validate(loaded)
    except ValidationError as error:
        raise _invalid(path, lines, error) from None
    if kind is ArticleKind.VIDEO and not meta.url:
        raise ContentError(f"{path}:1: a video needs its url (the address to watch it)")
    quiz = meta.quiz
    if quiz is not None and quiz.answer not in quiz.options:
        raise ContentError(
            f"{path}:{_line_of(lines, ('quiz', 'answer'))}: the quiz answer {quiz.answer!r}"
            " is not one of the options"
        )
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
