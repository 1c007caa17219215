"""The invitation codes as a workbook for the party office: one row a member, ready to
print, cut into slips or send one by one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook

from bot.membership import Issued
from bot.sheets import write_cell
from data.invitations import grouped

HEADER = ("工号", "姓名", "支部", "邀请码", "请本人在微信或QQ上发送")
WIDTHS = (12, 12, 20, 14, 36)


def write(path: Path, issued: Sequence[Issued]) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "邀请码"
    for column, (title, width) in enumerate(zip(HEADER, WIDTHS, strict=True), start=1):
        write_cell(sheet, 1, column, title)
        sheet.column_dimensions[chr(ord("A") + column - 1)].width = width
    for row, invite in enumerate(issued, start=2):
        code = grouped(invite.code)
        values = (
            invite.roster_id,
            invite.name,
            invite.branch,
            code,
            f"绑定 {invite.roster_id} {code}",
        )
        for column, value in enumerate(values, start=1):
            write_cell(sheet, row, column, value)
    sheet.freeze_panes = "A2"
    workbook.save(path)
