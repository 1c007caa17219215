"""The invitation codes as a workbook for the party office: one row a member, ready to
print, cut into slips or send one by one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook

from bot.membership import Issued
from bot.sheets import write_cell, write_heading
from data.invitations import grouped

HEADER = ("工号", "姓名", "支部", "邀请码", "请本人在微信或QQ上发送")
WIDTHS = (12, 12, 20, 14, 36)


def write(path: Path, issued: Sequence[Issued]) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    write_heading(sheet, HEADER, WIDTHS, "邀请码")
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
    workbook.save(path)
