"""`登录`: a secretary or admin signs in to the web console from the chat — `登录 123456` with
the code the sign-in page shows, or `登录` alone for a one-time link to open on the phone."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import signin
from bot.clock import Clock
from bot.messages import Sender
from bot.router import UsageError
from bot.settings import Settings
from bot.textforms import parsed
from content.texts import render
from data.models import Member, Role
from handlers import router

CODE_DIGITS = 6


def parse_code(args: str) -> str:
    """ "" (a link wanted) or the six digits of a sign-in code ("123 456" too)."""
    text = parsed(args).replace(" ", "")
    if not text:
        return ""
    if len(text) != CODE_DIGITS or not (text.isascii() and text.isdigit()):
        raise UsageError("login_code")
    return text


@router.command(
    "登录",
    usage="登录 [登录码]",
    summary="登录管理后台：发送电脑上显示的6位登录码；手机上只发“登录”获取链接",
    role=Role.SECRETARY,
    parse=parse_code,
)
async def sign_in(
    args: str,
    member: Member,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    sender: Sender,
) -> str:
    now = clock.now()
    if not signin.may_use_console(member):
        return render("console_not_staff")
    if not args:
        if not settings.public_url:
            return render("console_link_unavailable")
        token = await signin.issue_link(session, member, now)
        if token is None:
            return render("console_throttled")
        url = signin.link_url(settings.public_url, token, settings.public_url)
        minutes = int(signin.LINK_LIFETIME.total_seconds() // 60)
        return render("console_link", url=url, minutes=minutes)
    claimed = await signin.claim_code(session, member, sender.channel, args, now)
    if claimed.outcome is signin.Claim.SIGNED_IN and claimed.sign_in is not None:
        browser = signin.describe_browser(claimed.sign_in.user_agent)
        return render("console_signed_in", browser=browser, ip=claimed.sign_in.ip)
    return render(f"console_{claimed.outcome.value}")
