"""月打分 and 关账 from the console's 资料 pages: an admin grades a branch's month from its
gallery and closes or reopens a month; a secretary sees their branch's grade read-only and
any POST of theirs is a 404; every form needs its CSRF token."""

from __future__ import annotations

import datetime as dt

from bot.appkeys import CONVERSATION
from data import audit, closed_months, figures, grades
from tests.console.conftest import Console

OCTOBER = "2026-10"  # ended on the console's clock (2026-11-25)
FIRST = dt.date(2026, 10, 1)


async def branch_ids(console: Console) -> dict[str, int]:
    async with console.client.app[CONVERSATION].sessions() as session:
        return {name: branch_id for branch_id, name in (await figures.branches(session)).items()}


async def gallery(console: Console, branch: int, month: str = OCTOBER) -> str:
    response = await console.client.get(f"/admin/materials?branch={branch}&month={month}")
    assert response.status == 200
    return await response.text()


async def post(console: Console, path: str, **form: str) -> tuple[int, str]:
    response = await console.client.post(f"/admin/{path}", data=form, allow_redirects=False)
    return response.status, await response.text()


async def grade(console: Console, csrf: str, branch: int, text: str, comment: str = "") -> int:
    status, _ = await post(
        console,
        "materials/grade",
        csrf=csrf,
        branch=str(branch),
        month=OCTOBER,
        grade=text,
        comment=comment,
    )
    return status


async def test_admin_grades_a_branch_from_its_gallery(console: Console) -> None:
    csrf = await console.sign_in("9001")
    one = (await branch_ids(console))["第一党支部"]
    page = await gallery(console, one)
    assert "待评" in page and 'action="/admin/materials/grade"' in page
    assert 'value="优"' in page and 'value="差"' in page

    assert await grade(console, csrf, one, "良", "照片清晰，说明完整") == 303
    assert await grade(console, csrf, one, "优", "补充了会议记录") == 303

    page = await gallery(console, one)
    assert "当前：<strong>优</strong>" in page and "补充了会议记录" in page
    assert "刘洋（9001）" in page
    async with console.client.app[CONVERSATION].sessions() as session:
        given = await grades.grade_of(session, one, FIRST)
        rows = await audit.entries(session, action="month.grade")
    assert given is not None and (given.grade, given.value) == ("优", 1.0)
    assert [(r.door, r.branch_id) for r in rows] == [("console", one), ("console", one)]


async def test_a_bad_grade_is_refused_in_chinese(console: Console) -> None:
    csrf = await console.sign_in("9001")
    one = (await branch_ids(console))["第一党支部"]
    status, page = await post(
        console, "materials/grade", csrf=csrf, branch=str(one), month=OCTOBER, grade="甲"
    )
    assert status == 422 and "打分无效：请选择优、良、中、差之一。" in page
    status, page = await post(
        console,
        "materials/grade",
        csrf=csrf,
        branch=str(one),
        month=OCTOBER,
        grade="优",
        comment="长" * 501,
    )
    assert status == 422 and "评语太长" in page


async def test_secretary_sees_the_grade_read_only_and_cannot_post(console: Console) -> None:
    admin = await console.sign_in("9001")
    ids = await branch_ids(console)
    one = ids["第一党支部"]
    await post(console, "materials/grade", csrf=admin, branch=str(one), month=OCTOBER, grade="中")
    console.client.session.cookie_jar.clear()

    csrf = await console.sign_in("1003")  # 王芳, secretary of 第一党支部
    page = await gallery(console, one)
    assert "当前：<strong>中</strong>" in page
    assert 'action="/admin/materials/grade"' not in page and 'id="closing"' not in page
    for path, form in [
        ("materials/grade", {"branch": str(one), "month": OCTOBER, "grade": "优"}),
        ("materials/close", {"month": OCTOBER}),
        ("materials/reopen", {"month": OCTOBER, "reason": "想改"}),
    ]:
        status, _ = await post(console, path, csrf=csrf, **form)
        assert status == 404, path
    response = await console.client.get(f"/admin/materials/close?month={OCTOBER}")
    assert response.status == 404
    async with console.client.app[CONVERSATION].sessions() as session:
        kept = await grades.grade_of(session, one, FIRST)
        assert await closed_months.closed(session, FIRST) is None
    assert kept is not None and kept.grade == "中"


async def test_unknown_branch_and_missing_csrf(console: Console) -> None:
    csrf = await console.sign_in("9001")
    one = (await branch_ids(console))["第一党支部"]
    status, _ = await post(
        console, "materials/grade", csrf=csrf, branch="999999", month=OCTOBER, grade="优"
    )
    assert status == 404
    status, _ = await post(
        console, "materials/grade", csrf=csrf, branch=str(one), month="2026-13", grade="优"
    )
    assert status == 404
    status, _ = await post(console, "materials/grade", branch=str(one), month=OCTOBER, grade="优")
    assert status == 403
    status, _ = await post(console, "materials/close", month=OCTOBER)
    assert status == 403
    async with console.client.app[CONVERSATION].sessions() as session:
        assert await grades.grade_of(session, one, FIRST) is None
        assert await closed_months.closed(session, FIRST) is None


async def test_admin_closes_and_reopens_a_month(console: Console) -> None:
    csrf = await console.sign_in("9001")
    one = (await branch_ids(console))["第一党支部"]
    overview = await (await console.client.get(f"/admin/materials?month={OCTOBER}")).text()
    assert f'href="/admin/materials/close?month={OCTOBER}"' in overview

    confirm = await console.client.get(f"/admin/materials/close?month={OCTOBER}")
    assert confirm.status == 200 and "确认关账" in await confirm.text()
    status, _ = await post(console, "materials/close", csrf=csrf, month=OCTOBER)
    assert status == 303

    overview = await (await console.client.get(f"/admin/materials?month={OCTOBER}")).text()
    assert "2026年10月已关账" in overview and "重新开账的原因" in overview
    page = await gallery(console, one)
    assert "2026年10月已关账" in page and 'action="/admin/materials/grade"' not in page
    status, page = await post(
        console, "materials/grade", csrf=csrf, branch=str(one), month=OCTOBER, grade="优"
    )
    assert status == 409 and "本月已关账，打分不能再修改" in page

    status, page = await post(console, "materials/reopen", csrf=csrf, month=OCTOBER, reason=" ")
    assert status == 422 and "重新开账需要填写原因" in page
    status, _ = await post(
        console, "materials/reopen", csrf=csrf, month=OCTOBER, reason="补录支部材料"
    )
    assert status == 303
    overview = await (await console.client.get(f"/admin/materials?month={OCTOBER}")).text()
    assert "已关账" not in overview
    async with console.client.app[CONVERSATION].sessions() as session:
        actions = [r.action for r in await audit.entries(session) if r.action.startswith("month")]
    assert actions == ["month.reopen", "month.close"]


async def test_a_month_in_progress_cannot_be_closed(console: Console) -> None:
    csrf = await console.sign_in("9001")
    overview = await (await console.client.get("/admin/materials?month=2026-11")).text()
    assert "月末之后才能关账" in overview and "/admin/materials/close?" not in overview
    status, page = await post(console, "materials/close", csrf=csrf, month="2026-11")
    assert status == 409 and "本月还没有结束" in page
