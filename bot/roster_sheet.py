"""The roster as a workbook for the party office: the columns `qiyi members import` and the
console's 导入名册 read back (工号, 姓名, 支部, 角色), then two for information (绑定渠道,
离开日期) that an import reads past."""

from __future__ import annotations

import io
from collections.abc import Sequence

from openpyxl import Workbook

from bot.channel_names import channel_name
from bot.sheets import write_cell, write_heading
from data.members import MemberListing

HEADER = ("工号", "姓名", "支部", "角色", "绑定渠道", "离开日期")
WIDTHS = (12, 12, 20, 10, 24, 12)
# The names `bot.roster.ROLE_ALIASES` reads back.
ROLE_WORDS = {"member": "党员", "secretary": "书记", "admin": "管理员"}


def workbook_bytes(listing: Sequence[MemberListing]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    write_heading(sheet, HEADER, WIDTHS, "名册")
    for row, member in enumerate(listing, start=2):
        channels = "、".join(channel_name(name) for name in member.channels.split(",") if name)
        values = (
            member.member_id,
            member.name,
            member.branch,
            ROLE_WORDS.get(member.role, member.role),
            channels,
            member.left_on,
        )
        for column, value in enumerate(values, start=1):
            write_cell(sheet, row, column, value)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
