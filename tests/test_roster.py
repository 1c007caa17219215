"""Reading a roster file: every problem is collected at once, with its line, as data; the
reading is bounded (rows, cells) and a zip bomb is refused from its directory alone."""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Callable
from types import FrameType

import pytest
from openpyxl import Workbook

from bot import roster
from bot.roster import Problem, ProblemKind, english, parse_file, parse_rows
from data.models import Role

HEADER = ["member_id", "name", "branch", "role", "phone"]


def test_every_problem_of_the_file_is_listed_with_its_line() -> None:
    rows = [
        HEADER,
        ["1001", "张三", "第一党支部", "member", ""],
        ["1002", "", "第一党支部", "boss", "12"],
        [],  # a blank line counts as a line but is no member
        ["1003", "王" * 101, "", "党员", ""],
        ["1001", "张三", "第一党支部", "member", ""],
    ]

    parsed = parse_rows(rows)

    assert parsed.rows == []  # one problem is enough to import nothing
    assert parsed.problems == [
        Problem(3, ProblemKind.EMPTY, "name"),
        Problem(3, ProblemKind.UNKNOWN_ROLE, "role", "boss"),
        Problem(3, ProblemKind.SHORT_PHONE, "phone"),
        Problem(5, ProblemKind.EMPTY, "branch"),
        Problem(5, ProblemKind.TOO_LONG, "name", number=100),
        Problem(6, ProblemKind.REPEATED, "member_id", "1001", 2),
    ]
    assert [english(p) for p in parsed.problems][-1] == "line 6: member_id 1001 repeats line 2"


def test_a_good_file_gives_its_members() -> None:
    parsed = parse_rows([HEADER, ["1001", "张三", "第一党支部", "书记", "138 0013 8000"]])

    assert parsed.problems == []
    [row] = parsed.rows
    assert (row.member_id, row.role, row.phone_tail) == ("1001", Role.SECRETARY, "8000")


def test_a_bad_header_is_the_only_problem_reported() -> None:
    parsed = parse_rows([["id", "name", "branch", "role"], ["1", "", "", ""]])

    assert parsed.problems == [Problem(1, ProblemKind.BAD_HEADER, value="id,name,branch,role")]


def test_a_file_without_members_is_a_problem() -> None:
    assert parse_rows([HEADER, ["", "", ""]]).problems == [Problem(0, ProblemKind.NO_MEMBERS)]


def test_rows_beyond_the_cap_stop_the_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(roster, "MAX_ROWS", 3)
    rows = [HEADER, *([str(n), "某人", "支部", "member", ""] for n in range(10))]

    parsed = parse_rows(rows)

    assert parsed.problems == [Problem(5, ProblemKind.TOO_MANY_ROWS, number=3)]


def _lines_run(rows: list[list[str]]) -> int:
    """How many lines of Python `parse_rows` runs for `rows` (a count of steps, not a time)."""
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> Callable[..., object] | None:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    before = sys.gettrace()
    sys.settrace(trace)
    try:
        parse_rows(rows)
    finally:
        sys.settrace(before)
    return count


@pytest.mark.parametrize("repeated", [False, True], ids=["distinct", "one-id-repeated"])
def test_the_reading_takes_linear_time(repeated: bool) -> None:
    """Twice the rows, each with problems (and, worst for the duplicate check, all with one
    member id), take twice the steps."""

    def rows(count: int) -> list[list[str]]:
        ids = ("1" if repeated else str(n) for n in range(count))
        return [HEADER, *([member_id, "", "支部", "boss", "12"] for member_id in ids)]

    small, large = _lines_run(rows(1_000)), _lines_run(rows(2_000))

    assert 1.9 < large / small < 2.05


def test_a_full_roster_of_problems_is_read_in_full() -> None:
    rows = [HEADER, *([str(n), "", "支部", "boss", ""] for n in range(roster.MAX_ROWS))]
    assert len(parse_rows(rows).problems) == 2 * roster.MAX_ROWS


def test_cells_past_the_cap_are_not_read() -> None:
    wide = ["1001", "张三", "第一党支部", "member", "", *(["x" * 200] * 10_000)]
    parsed = parse_rows([HEADER, wide])
    assert parsed.problems == [] and len(parsed.rows) == 1


def test_the_export_columns_are_read_past() -> None:
    data = "工号,姓名,支部,角色,绑定渠道,离开日期\n1001,张三,第一党支部,党员,微信,\n".encode()
    parsed = parse_file("名册.csv", data)
    assert parsed.problems == [] and parsed.rows[0].name == "张三"


def test_a_zip_bomb_is_refused_before_openpyxl_opens_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("opened")

    monkeypatch.setattr(roster, "load_workbook", never)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (roster.MAX_UNPACKED_BYTES + 1))

    parsed = parse_file("bomb.xlsx", out.getvalue())

    assert parsed.problems == [Problem(0, ProblemKind.UNPACKS_TOO_LARGE, number=50)]


def test_damaged_files_are_problems_not_crashes() -> None:
    assert parse_file("a.xlsx", b"not a zip").problems == [Problem(0, ProblemKind.BAD_WORKBOOK)]
    neither = "工号,姓名".encode() + b"\x80"  # neither UTF-8 nor GBK
    assert parse_file("a.csv", neither).problems == [Problem(0, ProblemKind.BAD_ENCODING)]
    assert parse_file("a.txt", b"x").problems == [Problem(0, ProblemKind.BAD_SUFFIX)]
    huge_field = b'member_id,name,branch,role\n1,"' + b"x" * 200_000 + b'",b,member\n'
    assert parse_file("a.csv", huge_field).problems == [Problem(0, ProblemKind.BAD_CSV)]


def test_an_xlsx_reports_problems_by_row() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["工号", "姓名", "支部", "角色"])
    sheet.append([1001, "张三", "第一党支部", "党员"])
    sheet.append([1002, "李四", None, "党员"])
    out = io.BytesIO()
    workbook.save(out)

    parsed = parse_file("名册.xlsx", out.getvalue())

    assert parsed.problems == [Problem(3, ProblemKind.EMPTY, "branch")]


def test_problems_survive_the_drafts_json() -> None:
    problem = Problem(7, ProblemKind.REPEATED, "member_id", "1001", 2)
    assert Problem.from_json(problem.as_json()) == problem
