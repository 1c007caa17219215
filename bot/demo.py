"""`qiyi demo`: a throwaway database with a sample roster and the shipped content."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import sys

from bot import signin
from bot.messages import Sender
from data import articles, members
from data.db import Sessions, transaction
from data.members import RosterRow
from data.models import Role

# The `qiyi wechat sample` default, where the demo's printed commands leave it out.
DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN = "qiyi-demo-token"
OPENID = "o_demo_member_1001"
ROSTER = [
    RosterRow("1001", "张三", "第一党支部", Role.MEMBER),
    RosterRow("1002", "李四", "第一党支部", Role.MEMBER),
    RosterRow("1003", "王芳", "第一党支部", Role.SECRETARY),
    RosterRow("2001", "赵强", "第二党支部", Role.MEMBER),
    RosterRow("2002", "陈静", "第二党支部", Role.SECRETARY),
    RosterRow("9001", "刘洋", "机关党支部", Role.ADMIN),
]


ADMIN = "9001"  # 刘洋, the demo's admin: the console's first sign-in


async def console_link(sessions: Sessions, now: dt.datetime, server: str) -> str:
    """A one-time sign-in link to the demo's console for its admin (as `qiyi admin link`)."""
    async with transaction(sessions) as session:
        admin = await members.member_by_roster_id(session, ADMIN)
        assert admin is not None
        token = await signin.issue_link(session, admin, now)
    assert token is not None
    return signin.link_url(None, token, server)


async def seed(sessions: Sessions, now: dt.datetime) -> None:
    from content.library import read_all

    async with transaction(sessions) as session:
        await members.upsert_roster(session, ROSTER, now)
        await articles.upsert(session, read_all())
        member = await members.member_by_roster_id(session, ROSTER[0].member_id)
        assert member is not None
        await members.bind(session, Sender("wechat", OPENID), member, now)


def invocation(argv0: str | None = None, executable: str | None = None) -> str:
    """This program as the shell command that started it, to paste into another terminal:
    `.venv/bin/qiyi` when run as that, `/path/to/python -m bot` when run as a module."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    as_module = f"{shlex.quote(executable)} -m bot"
    if argv0.endswith(".py") or argv0 in ("", "-c", "-m"):
        return as_module
    if os.sep in argv0:  # a path, as typed (or as found on PATH)
        return shlex.quote(argv0)
    found = shutil.which(argv0)  # a bare name: a paste must find the same program
    return shlex.quote(found) if found else as_module


def instructions(
    database: str, url: str, program: str, curl: str, server: str, link: str = ""
) -> list[str]:
    """What the demo prints: how to talk to it, every command ready to paste."""
    roster = ", ".join(f"{row.member_id} {row.name} ({row.role})" for row in ROSTER)
    where = "" if os.path.isabs(shlex.split(program)[0]) else " (from this folder)"
    sample = f"QIYI_WECHAT_TOKEN={TOKEN} {program} wechat sample --text 积分"
    if server != DEFAULT_URL:
        sample += f" --url {shlex.quote(server)}"
    return [
        f"Qiyi demo — database {database} (removed when the demo stops)",
        f"Members: {roster}; 1001 is bound to WeChat as {OPENID}",
        f"Chat as a member, in another terminal{where}:",
        f"  QIYI_DATABASE_URL={shlex.quote(url)} {program} chat --as 1001",
        f"Or send a signed WeChat message (valid 5 minutes; Token {TOKEN}):",
        f"  {curl}",
        f"A fresh one: {sample}",
        *(
            [
                f"The web console (管理后台): {server}/admin/ — sign in as the admin 刘洋 with",
                f"  {link}",
                "  (10 minutes, once; a new link:"
                f" QIYI_DATABASE_URL={shlex.quote(url)} {program} admin link --as {ADMIN})",
            ]
            if link
            else []
        ),
        "Ctrl+C stops the demo.",
    ]
