"""`qiyi content sync`: a front-matter error names its file and line; a key typed with a
full-width `：` (a Chinese input method) reads as `key:`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app
from content.library import ContentError, ascii_key_colons, read_file
from data.models import ArticleKind

BAD = Path("site") / "news" / "01-bad.md"


pytestmark = pytest.mark.usefixtures("isolated_cli")


@pytest.fixture(autouse=True)
def content_folders(isolated_cli: None, tmp_path: Path) -> None:
    (tmp_path / "site" / "lessons").mkdir(parents=True)
    (tmp_path / "site" / "news").mkdir(parents=True)


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    return {"QIYI_DATABASE_URL": sqlite_url, "QIYI_SCHEDULER": "off"}


def sync(env: dict[str, str]) -> Result:
    return CliRunner().invoke(app, ["content", "sync", "--folder", "site"], env=env)


def flat(text: str) -> str:
    return " ".join(text.split())


BROKEN = [
    pytest.param(
        "---\nslug: news-bad\ntitle: [unclosed\npublish_at: 2026-11-02T07:30:00+08:00\n---\n正文\n",
        ":3: while parsing a flow sequence",
        id="unclosed-bracket",
    ),
    pytest.param(
        "---\nslug: news-bad\ntitle: 标题: 副标题\npublish_at: 2026-11-02T07:30:00+08:00\n---\n",
        ":3: mapping values are not allowed here",
        id="colon-in-plain-text",
    ),
    pytest.param(
        "---\nslug: news-bad\ntitle: 没有时区\npublish_at: 2026-11-02T07:30:00\n---\n正文\n",
        ":4: publish_at: publish_at needs a UTC offset",
        id="naive-publish-at",
    ),
    pytest.param(
        "---\nslug: news-bad\npublish_at: 2026-11-02T07:30:00+08:00\n---\n正文\n",
        ":1: the front matter has no title",
        id="missing-title",
    ),
    pytest.param(
        "---\nslug: news-bad\ntitle: 题\npublish_at: 2026-11-02T07:30:00+08:00\n"
        "quiz:\n  question: 几项？\n  options: {A: 五项, B: 八项}\n  answer: C\n---\n",
        ":8: the quiz answer 'C' is not one of the options",
        id="quiz-answer",
    ),
    pytest.param(
        "---\nslug: news-bad\ntitle: 题\npublish_at: 2026-11-02T07:30:00+08:00\n"
        "quiz:\n  question: 几项？\n  options: {A: 五项, G: 八项}\n  answer: A\n---\n",
        ":7: quiz.options: options are 2 to 6 of the letters A-F",
        id="quiz-options",
    ),
    pytest.param(
        "---\nslug: news-bad\ntitle: 没有结尾\n\n正文\n", ":1: the front matter", id="unclosed"
    ),
    pytest.param("就是正文\n", ":1: the file must start with front matter", id="no-front-matter"),
    pytest.param("---\n- 一\n- 二\n---\n正文\n", ":2: the front matter is not", id="a-list"),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_a_front_matter_error_names_the_file_and_line(
    env: dict[str, str], text: str, expected: str
) -> None:
    BAD.write_text(text, encoding="utf-8")

    result = sync(env)

    assert result.exit_code == 1
    message = flat(result.output)
    assert f"{BAD}{expected}" in message
    assert len(result.output.strip().splitlines()) == 1


def test_a_file_not_in_utf8_is_named(env: dict[str, str]) -> None:
    BAD.write_bytes("---\nslug: news-gbk\ntitle: 简体\n---\n正文\n".encode("gbk"))

    result = sync(env)

    assert result.exit_code == 1
    assert f"{BAD}: not UTF-8 text" in flat(result.output)


FULL_WIDTH = """---
slug：lesson-full-width
title： 党员的义务与权利
summary: 要点：义务和权利相统一
publish_at：2026-11-02T07:30:00+08:00
url：https://example.org/lesson
quiz：
  question： 党章规定党员必须履行的义务共有几项？
  options： {A：五项, B：八项, C: 十项}
  answer：B
  explanation: |
    Note：这一行是正文，不是键
---
正文：第一段。
"""


def test_full_width_colons_after_keys_read_as_colons(env: dict[str, str], sqlite_url: str) -> None:
    (Path("site") / "lessons" / "01-full-width.md").write_text(FULL_WIDTH, encoding="utf-8")

    result = sync(env)

    assert result.exit_code == 0, result.output
    database = sqlite_url.split("///")[1]
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT slug, title, summary, url, quiz_question, quiz_options, quiz_answer,"
            " quiz_explanation, body FROM article"
        ).fetchone()
    slug, title, summary, url, question, options, answer, explanation, body = row
    assert (slug, title, url) == (
        "lesson-full-width",
        "党员的义务与权利",
        "https://example.org/lesson",
    )
    assert summary == "要点：义务和权利相统一"  # a value's own ： stays
    assert question == "党章规定党员必须履行的义务共有几项？"
    assert json.loads(options) == {"A": "五项", "B": "八项", "C": "十项"}
    assert answer == "B"
    assert explanation.strip() == "Note：这一行是正文，不是键"  # text in a | block is left alone
    assert body == "正文：第一段。"


def test_only_key_colons_change() -> None:
    lines = [
        "title：标题：副标题",
        "  - name：张三",
        "summary: 时间：今天",
        "note: >",
        "  key：not a key",
        "options: {A：五项, B: 六项}",
        "after：x",
    ]

    assert ascii_key_colons(lines) == [
        "title: 标题：副标题",
        "  - name: 张三",
        "summary: 时间：今天",
        "note: >",
        "  key：not a key",
        "options: {A: 五项, B: 六项}",
        "after: x",
    ]


def test_a_byte_order_mark_is_not_in_the_way(tmp_path: Path) -> None:
    path = tmp_path / "bom.md"
    text = "---\nslug: news-bom\ntitle: 记事本\npublish_at: 2026-11-02T07:30:00+08:00\n---\n正文\n"
    path.write_bytes("\ufeff".encode() + text.encode())

    assert read_file(path, ArticleKind.NEWS).title == "记事本"


def test_a_video_file_needs_its_url(tmp_path: Path) -> None:
    video = tmp_path / "site" / "videos" / "01-letter.md"
    video.parent.mkdir()
    front = "---\nslug: video-letter\ntitle: 红色家书\npublish_at: 2026-11-02T19:00:00+08:00\n"
    video.write_text(front + "---\n", encoding="utf-8")
    with pytest.raises(ContentError, match=r"01-letter.md:1: a video needs its url"):
        read_file(video, ArticleKind.VIDEO)
    video.write_text(front + "url: https://example.org/letter.mp4\n---\n", encoding="utf-8")
    assert read_file(video, ArticleKind.VIDEO).url == "https://example.org/letter.mp4"
