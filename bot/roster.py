"""Reading a roster file (CSV or XLSX, header `member_id,name,branch,role` and optionally
`phone`), all or nothing: every problem of the file is collected, with its line, and one
problem is enough to import nothing. Problems are data; each door words them itself."""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from openpyxl import load_workbook

from data.members import RosterRow
from data.models import Role

HEADER = ("member_id", "name", "branch", "role")
# Optional: the phone number, for QIYI_BIND_PROOF=phone4. Only its last 4 digits are kept.
PHONE = "phone"
# Clerks often keep the roster with Chinese headings and role names.
HEADER_ALIASES = {
    "工号": "member_id",
    "姓名": "name",
    "支部": "branch",
    "角色": "role",
    "手机": PHONE,
    "手机号": PHONE,
    "电话": PHONE,
}
# Columns of the console's export that an import reads past (`bot.roster_sheet`).
INFORMATIVE = frozenset({"绑定渠道", "离开日期"})
ROLE_ALIASES = {"党员": "member", "成员": "member", "书记": "secretary", "管理员": "admin"}
LIMITS = {"member_id": 50, "name": 100, "branch": 100}
MAX_ROWS = 20_000  # members in one file
MAX_CELLS = 20  # cells read of a row; the roster has at most seven columns
MAX_CELL_CHARS = 200  # of a cell, beyond which it is cut (and too long for any field)
MAX_UNPACKED_BYTES = 50 * 1024 * 1024  # what an XLSX may unpack to (a zip bomb is refused)
SUFFIXES = (".csv", ".xlsx")


class ProblemKind(StrEnum):
    NO_FILE = "no_file"
    BAD_SUFFIX = "bad_suffix"
    BAD_ENCODING = "bad_encoding"
    BAD_CSV = "bad_csv"
    BAD_WORKBOOK = "bad_workbook"
    UNPACKS_TOO_LARGE = "unpacks_too_large"
    BAD_HEADER = "bad_header"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    UNKNOWN_ROLE = "unknown_role"
    REPEATED = "repeated"
    SHORT_PHONE = "short_phone"
    NO_MEMBERS = "no_members"
    TOO_MANY_ROWS = "too_many_rows"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file: `line` is the 1-based line (row), 0 for the file;
    `field` the column, `value` what was found, `number` a limit or the line first seen."""

    line: int
    kind: ProblemKind
    field: str = ""
    value: str = ""
    number: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "kind": self.kind.value,
            "field": self.field,
            "value": self.value,
            "number": self.number,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Problem:
        return cls(
            int(str(data["line"])),
            ProblemKind(str(data["kind"])),
            str(data["field"]),
            str(data["value"]),
            int(str(data["number"])),
        )


@dataclass(frozen=True)
class Parsed:
    rows: list[RosterRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class RosterError(ValueError):
    """The file is rejected, for every one of `problems`."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(english(problem) for problem in problems[:3]))
        self.problems = problems


def english(problem: Problem) -> str:
    """The problem in the CLI's words."""
    kind, name, value, number = problem.kind, problem.field, problem.value, problem.number
    text = {
        ProblemKind.NO_FILE: f"no such file: {value}",
        ProblemKind.BAD_SUFFIX: "only .csv and .xlsx files are read",
        ProblemKind.BAD_ENCODING: "the file is neither UTF-8 nor GBK text",
        ProblemKind.BAD_CSV: "the file is not readable CSV",
        ProblemKind.BAD_WORKBOOK: "the file is not a readable .xlsx workbook",
        ProblemKind.UNPACKS_TOO_LARGE: f"the workbook unpacks to more than {number} MB",
        ProblemKind.BAD_HEADER: (
            f"the header must be {','.join(HEADER)}[,{PHONE}] (found {value})"
        ),
        ProblemKind.EMPTY: f"{name} is empty",
        ProblemKind.TOO_LONG: f"{name} is longer than {number} characters",
        ProblemKind.UNKNOWN_ROLE: f"role {value!r} is not member, secretary or admin",
        ProblemKind.REPEATED: f"member_id {value} repeats line {number}",
        ProblemKind.SHORT_PHONE: "phone has fewer than 4 digits",
        ProblemKind.NO_MEMBERS: "the file has no members",
        ProblemKind.TOO_MANY_ROWS: f"the file has more than {number} members",
    }[kind]
    return f"line {problem.line}: {text}" if problem.line else text


def _csv_cells(raw: bytes) -> Iterator[list[str]] | Problem:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        return Problem(0, ProblemKind.BAD_ENCODING)
    return csv.reader(io.StringIO(text))


def unpacked_size(raw: bytes) -> int | None:
    """What the XLSX (a zip) says its members unpack to, read from its directory alone;
    None when it is no zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        return None


def _xlsx_cells(raw: bytes) -> Iterator[list[str]] | Problem:
    size = unpacked_size(raw)
    if size is None:
        return Problem(0, ProblemKind.BAD_WORKBOOK)
    if size > MAX_UNPACKED_BYTES:
        return Problem(0, ProblemKind.UNPACKS_TOO_LARGE, number=MAX_UNPACKED_BYTES // 2**20)
    try:
        workbook = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged workbook
        return Problem(0, ProblemKind.BAD_WORKBOOK)
    return _sheet_cells(workbook)


class _Damaged(Exception):
    """The workbook opened, but a sheet of it cannot be read."""


def _sheet_cells(workbook: object) -> Iterator[list[str]]:
    try:
        sheet = workbook.worksheets[0]  # type: ignore[attr-defined]
        rows = sheet.iter_rows(max_row=MAX_ROWS + 2, max_col=MAX_CELLS, values_only=True)
        for row in rows:
            yield ["" if cell is None else _cell_text(cell) for cell in row]
    except Exception as damage:  # openpyxl raises many kinds for a damaged sheet
        raise _Damaged from damage
    finally:
        workbook.close()  # type: ignore[attr-defined]


def _cell_text(cell: object) -> str:
    # A spreadsheet turns the member_id 1001 into the number 1001.0.
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _header(cells: list[str]) -> list[str] | Problem:
    names = [HEADER_ALIASES.get(c.strip(), c.strip().lower()) for c in cells[:MAX_CELLS]]
    while names and not names[-1]:
        names.pop()
    required = sorted(name for name in names if name not in INFORMATIVE and name != PHONE)
    if required != sorted(HEADER) or names.count(PHONE) > 1:
        return Problem(1, ProblemKind.BAD_HEADER, value=",".join(names)[:MAX_CELL_CHARS])
    return names


def phone_tail(text: str) -> str:
    """The last 4 digits of a phone number as written (spaces, dashes, +86, full-width
    digits); "" for an empty cell. `ValueError` when it has fewer than 4 digits."""
    digits = "".join(c for c in unicodedata.normalize("NFKC", text) if c.isascii() and c.isdigit())
    if not digits:
        return ""
    if len(digits) < 4:
        raise ValueError(text)
    return digits[-4:]


class _Rows:
    """The rows read so far, and what is wrong with them."""

    def __init__(self, header: list[str]) -> None:
        self.header = header
        self.found: list[RosterRow] = []
        self.problems: list[Problem] = []
        self.first_seen: dict[str, int] = {}

    def read(self, line: int, cells: list[str]) -> None:
        values = {
            name: cell.strip()[:MAX_CELL_CHARS]
            for name, cell in zip(self.header, cells[:MAX_CELLS], strict=False)
        }
        wrong = len(self.problems)
        for name in HEADER:
            if not values.get(name):
                self.problems.append(Problem(line, ProblemKind.EMPTY, name))
        for name, limit in LIMITS.items():
            if len(values.get(name, "")) > limit:
                self.problems.append(Problem(line, ProblemKind.TOO_LONG, name, number=limit))
        given = values.get("role", "")
        role = ROLE_ALIASES.get(given, given.lower())
        if given and role not in {r.value for r in Role}:
            self.problems.append(Problem(line, ProblemKind.UNKNOWN_ROLE, "role", given))
        member_id = values.get("member_id", "")
        if member_id in self.first_seen:
            first = self.first_seen[member_id]
            self.problems.append(Problem(line, ProblemKind.REPEATED, "member_id", member_id, first))
        elif member_id:
            self.first_seen[member_id] = line
        tail: str | None = None
        if PHONE in self.header:
            try:
                tail = phone_tail(values.get(PHONE, ""))
            except ValueError:
                self.problems.append(Problem(line, ProblemKind.SHORT_PHONE, PHONE))
        if len(self.problems) == wrong:
            name, branch = values["name"], values["branch"]
            self.found.append(RosterRow(member_id, name, branch, Role(role), tail))


def parse_rows(rows: Iterable[list[str]]) -> Parsed:
    """Validate every row (at most `MAX_ROWS` members): the members read, and every
    problem of the file in line order; the file is good only when there is none."""
    iterator = iter(rows)
    header = _header(next(iterator, []))
    if isinstance(header, Problem):
        return Parsed([], [header])
    read = _Rows(header)
    members = 0
    for line, cells in enumerate(iterator, start=2):
        if not any(cell.strip() for cell in cells[:MAX_CELLS]):
            continue
        members += 1
        if members > MAX_ROWS:
            read.problems.append(Problem(line, ProblemKind.TOO_MANY_ROWS, number=MAX_ROWS))
            break
        read.read(line, cells)
    if members == 0:
        read.problems.append(Problem(0, ProblemKind.NO_MEMBERS))
    return Parsed([] if read.problems else read.found, read.problems)


def parse_file(name: str, raw: bytes) -> Parsed:
    """A roster file's bytes, read by its name's suffix (.csv or .xlsx)."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        return Parsed([], [Problem(0, ProblemKind.BAD_SUFFIX)])
    cells = _xlsx_cells(raw) if suffix == ".xlsx" else _csv_cells(raw)
    if isinstance(cells, Problem):
        return Parsed([], [cells])
    try:
        return parse_rows(cells)
    except csv.Error:  # a field beyond csv's limit, a stray quote in strict places
        return Parsed([], [Problem(0, ProblemKind.BAD_CSV)])
    except _Damaged:
        return Parsed([], [Problem(0, ProblemKind.BAD_WORKBOOK)])


def read_roster(path: Path) -> list[RosterRow]:
    """The members of a roster file; `RosterError` with every problem when it has any."""
    if not path.is_file():
        raise RosterError([Problem(0, ProblemKind.NO_FILE, value=str(path))])
    parsed = parse_file(path.name, path.read_bytes())
    if parsed.problems:
        raise RosterError(parsed.problems)
    return parsed.rows
