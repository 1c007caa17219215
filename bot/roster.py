"""Reading a roster file (CSV or XLSX, header `member_id,name,branch,role`), all or nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from openpyxl import load_workbook

from data.members import RosterRow
from data.models import Role

HEADER = ("member_id", "name", "branch", "role")
# Clerks often keep the roster with Chinese headings and role names.
HEADER_ALIASES = {"工号": "member_id", "姓名": "name", "支部": "branch", "角色": "role"}
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
    if sorted(names) != sorted(HEADER):
        raise RosterError(1, f"the header must be {','.join(HEADER)} (found {','.join(names)})")
    return names


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
        found.append(RosterRow(member_id, values["name"], values["branch"], Role(role)))
    if not found:
        raise RosterError(0, "the file has no members")
    return found


def read_roster(path: Path) -> list[RosterRow]:
    if not path.is_file():
        raise RosterError(0, f"no such file: {path}")
    return parse_rows(_cells(path))
