"""Reading a roster file (CSV or XLSX, header `member_id,name,branch,role` and optionally
`phone`), all or nothing."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator
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
ROLE_ALIASES = {"党员": "member", "成员": "member", "书记": "secretary", "管理员": "admin"}
LIMITS = {"member_id": 50, "name": 100, "branch": 100}


class RosterError(ValueError):
    """The file is rejected; `line` is the 1-based line (row) that is wrong, 0 for the file."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


def _cells(path: Path) -> Iterator[list[str]]:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            for row in workbook.worksheets[0].iter_rows(values_only=True):
                yield ["" if cell is None else _cell_text(cell) for cell in row]
        finally:
            workbook.close()
        return
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterError(0, "the file is neither UTF-8 nor GBK text")
    yield from csv.reader(io.StringIO(text))


def _cell_text(cell: object) -> str:
    # A spreadsheet turns the member_id 1001 into the number 1001.0.
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _header(cells: list[str]) -> list[str]:
    names = [HEADER_ALIASES.get(c.strip(), c.strip().lower()) for c in cells]
    while names and not names[-1]:
        names.pop()
    required = sorted(name for name in names if name != PHONE)
    if required != sorted(HEADER) or names.count(PHONE) > 1:
        expected = f"{','.join(HEADER)}[,{PHONE}]"
        raise RosterError(1, f"the header must be {expected} (found {','.join(names)})")
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


def parse_rows(rows: Iterable[list[str]]) -> list[RosterRow]:
    """Validate every row; the first problem rejects the whole file."""
    iterator = iter(rows)
    header = _header(next(iterator, []))
    found: list[RosterRow] = []
    first_seen: dict[str, int] = {}
    for line, cells in enumerate(iterator, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        values = dict(zip(header, (cell.strip() for cell in cells), strict=False))
        for field in HEADER:
            if not values.get(field):
                raise RosterError(line, f"{field} is empty")
        for field, limit in LIMITS.items():
            if len(values[field]) > limit:
                raise RosterError(line, f"{field} is longer than {limit} characters")
        role = ROLE_ALIASES.get(values["role"], values["role"].lower())
        if role not in {r.value for r in Role}:
            raise RosterError(line, f"role {values['role']!r} is not member, secretary or admin")
        member_id = values["member_id"]
        if member_id in first_seen:
            raise RosterError(line, f"member_id {member_id} repeats line {first_seen[member_id]}")
        first_seen[member_id] = line
        tail: str | None = None
        if PHONE in header:
            try:
                tail = phone_tail(values.get(PHONE, ""))
            except ValueError:
                raise RosterError(line, "phone has fewer than 4 digits") from None
        found.append(RosterRow(member_id, values["name"], values["branch"], Role(role), tail))
    if not found:
        raise RosterError(0, "the file has no members")
    return found


def read_roster(path: Path) -> list[RosterRow]:
    if not path.is_file():
        raise RosterError(0, f"no such file: {path}")
    return parse_rows(_cells(path))
