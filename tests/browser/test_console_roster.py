"""In a real browser: an admin uploads a roster with a bad line (the preview names the line,
nothing changes), then a good one, confirms, and finds the new member on 成员. Both previews
fit a PC and a 390-px phone without sideways scrolling."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.conversation import Conversation
from data import members
from tests.browser.conftest import PC, PHONE, Served, fits_width
from tests.conftest import ROSTER

HEADER = "工号,姓名,支部,角色"
SAME = [f"{r.member_id},{r.name},{r.branch},{r.role.value}" for r in ROSTER]


async def _member_ids(conversation: Conversation) -> list[str]:
    async with conversation.sessions() as session:
        return sorted(m.member_id for m in await members.list_members(session))


async def _fits(page: Any, shots: Path, name: str) -> None:
    """A screenshot at PC width and at 390 px, and no sideways scrolling on the phone."""
    await page.screenshot(path=str(shots / f"{name}-pc.png"), full_page=True)
    await page.set_viewport_size(PHONE["viewport"])
    await page.screenshot(path=str(shots / f"{name}-phone.png"), full_page=True)
    await fits_width(page)
    await page.set_viewport_size(PC["viewport"])


async def _upload(page: Any, base: str, name: str, lines: list[str]) -> None:
    await page.goto(f"{base}/admin/roster")
    data = ("\n".join(lines) + "\n").encode()
    await page.set_input_files(
        'input[name="file"]', {"name": name, "mimeType": "text/csv", "buffer": data}
    )
    await page.get_by_role("button", name="上传并预览").click()
    await page.wait_for_load_state()


async def test_an_admin_previews_fixes_and_imports_a_roster(
    browser: Any, served: Served, tmp_path: Path
) -> None:
    base, conversation = served.base, served.conversation
    page = await browser.new_page(**PC)
    await served.sign_in(page, "9001")
    before = await _member_ids(conversation)

    bad = [HEADER, *SAME, "3001,孙新,第二党支部,党员", "3002,周明,第二党支部,主任"]
    await _upload(page, base, "名册-有错.csv", bad)

    assert re.search(r"/admin/roster/drafts/[\w-]{32}$", page.url), page.url
    problems = await page.locator("table.problems").inner_text()
    assert "第 9 行" in problems and "主任" in problems
    assert await page.get_by_role("button", name="确认导入").count() == 0
    await _fits(page, tmp_path, "preview-problems")
    assert await _member_ids(conversation) == before

    # 1002 moves to the second branch; 2002 is left out (offered to be marked left).
    kept = [line for line in SAME if not line.startswith(("1002,", "2002,"))]
    good = [HEADER, *kept, "1002,李四,第二党支部,member", "3001,孙新,第二党支部,党员"]
    await _upload(page, base, "名册.csv", good)
    assert "3001 孙新" in await page.locator("ul.added").inner_text()
    assert "第一党支部 → 第二党支部" in await page.locator("ul.updated").inner_text()
    assert "2002 陈静" in await page.locator("ul.absent").inner_text()
    await _fits(page, tmp_path, "preview-change")
    assert await _member_ids(conversation) == before

    await page.get_by_role("button", name="确认导入").click()
    await page.wait_for_load_state()
    assert "名册已导入" in await page.locator("h1").inner_text()
    await page.get_by_role("link", name="查看成员").click()
    await page.wait_for_load_state()
    assert "孙新" in await page.locator("table.list").inner_text()
    assert await _member_ids(conversation) == sorted([*before, "3001"])
    async with conversation.sessions() as session:
        unticked = await members.member_by_roster_id(session, "2002")
    assert unticked is not None and unticked.left_on is None
    await page.close()
