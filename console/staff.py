"""Who is signed in: every console request but the sign-in pages needs a live session of a
secretary or admin, checked on the server each time (a lowered role ends it at once)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot import signin
from bot.appkeys import SESSIONS, SETTINGS
from bot.clock import Clock
from console import security
from data import audit, console
from data.db import transaction
from data.models import ConsoleSession, Member, Role

# Pages anyone may open: signing in, and the static files.
PUBLIC = frozenset({"login", "link", "link-confirm", "static"})
CLOCK = web.AppKey("console_clock", Clock)
# A form is a few fields. (A sub-application's own client_max_size is never used: aiohttp
# builds every request with the root application's, `Application._make_request`.)
MAX_FORM_BYTES = 64 * 1024
# An article's form carries its body: 20,000 characters, Chinese ones 9 bytes each encoded.
LARGER_FORMS = {"content-preview": 256 * 1024}
# Routes that read their multipart body themselves (an upload, with its own bound): they
# call `check_csrf` on the form's token field before they read the file. The content
# editor's form may carry a cover picture and a video (console/content_upload.py).
OWN_BODY = frozenset({"roster-upload", "content-create", "content-save"})


@dataclass(frozen=True)
class Staff:
    member: Member
    session: ConsoleSession

    @property
    def is_admin(self) -> bool:
        return self.member.role == Role.ADMIN.value

    @property
    def branch_scope(self) -> int | None:
        """The branch whose objects this person sees: their own, or all (None) for an admin."""
        return None if self.is_admin else self.member.branch_id

    @property
    def csrf(self) -> str:
        return self.session.csrf


STAFF = web.RequestKey("staff", Staff)


@web.middleware
async def signed_in(request: web.Request, handler: security.Handler) -> web.StreamResponse:
    route = request.match_info.route.name
    settings = request.config_dict[SETTINGS]
    if request.method == "POST" and not security.same_origin(request, settings):
        raise web.HTTPForbidden(text="cross-site request refused")
    if request.method == "POST" and route not in OWN_BODY:
        request = request.clone(client_max_size=LARGER_FORMS.get(route, MAX_FORM_BYTES))
    if route in PUBLIC:
        return await handler(request)
    staff = await current_staff(request)
    if staff is None:
        if request.method == "GET":
            raise web.HTTPSeeOther("/admin/login")
        raise web.HTTPForbidden(text="not signed in")
    if request.method == "POST" and route not in OWN_BODY:
        form = await request.post()
        check_csrf(staff, request.headers.get("X-CSRF-Token") or str(form.get("csrf", "")))
    request[STAFF] = staff
    return await handler(request)


def actor_of(request: web.Request) -> audit.Actor:
    """The signed-in staff member as the author of a change made through the console."""
    return audit.Actor.of_member(
        request[STAFF].member, audit.Door.CONSOLE, security.client_ip(request)
    )


def check_csrf(staff: Staff, given: str) -> None:
    if not security.csrf_matches(staff.csrf, given):
        raise web.HTTPForbidden(text="missing or wrong CSRF token")


async def current_staff(request: web.Request) -> Staff | None:
    token = request.cookies.get(security.SESSION_COOKIE, "")
    if not token or len(token) > 100:
        return None
    now = request.app[CLOCK].now()
    async with transaction(request.config_dict[SESSIONS]) as session:
        found = await console.visit(session, token, now, signin.SESSION_IDLE)
        if found is None:
            return None
        if not signin.may_use_console(found.member):
            # The role was lowered or the member left since: every session of theirs ends.
            assert found.member.id is not None
            why = "left" if found.member.left_on else "role"
            await console.end(session, now, why, member_id=found.member.id)
            return None
        await console.touch(session, found.session, now)
    return Staff(found.member, found.session)
