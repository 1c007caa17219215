"""`帮助`: the commands this person may use, generated from the declarations."""

from __future__ import annotations

from bot.messages import fits
from bot.router import Router
from bot.settings import Settings
from content.texts import render
from data.models import Member, Role
from handlers import router


@router.command("帮助", "菜单", "help", usage="帮助", summary="查看可用的指令", role=None)
async def show_help(member: Member | None, router: Router, settings: Settings) -> str:
    role = Role(member.role) if member else None
    # `绑定` takes what the configured proof needs (QIYI_BIND_PROOF).
    usages = {"绑定": render("bind_usage", proof=settings.bind_proof)}
    context = {
        "commands": router.commands_for(role),
        "bound": member is not None,
        "usages": usages,
        "proof": settings.bind_proof,
    }
    full = render("help", compact=False, staff_only=(), **context)
    # Staff have many commands: when their lines with summaries would not fit one reply, the
    # commands every member has are listed by their usage alone.
    if fits(full):
        return full
    return render("help", compact=True, staff_only=_staff_only(router), **context)


def _staff_only(router: Router) -> set[str]:
    everyone = {command.name for command in router.commands_for(Role.MEMBER)}
    return {command.name for command in router.commands if command.name not in everyone}
