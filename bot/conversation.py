"""One way through: an `Inbound` becomes one transaction, one handler call and one reply text."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import membership
from bot.channel_names import channel_name
from bot.clock import Clock, today
from bot.messages import Inbound, InboundKind, fits
from bot.reports.bulletins import Context
from bot.reports.standings import MonthStandings, Standings, computation_for
from bot.router import Command, Router, UsageError, call, call_dialog
from bot.rules import Rules
from bot.settings import Settings
from content.texts import render
from data import dialogs, mailbox, members, outbox, processed, seen_requests
from data.db import Sessions, transaction
from data.models import MailboxItem, Member, OutboxItem, Role

log = logging.getLogger(__name__)


def mask(external_id: str) -> str:
    """Chat ids in logs: enough to correlate, not enough to identify."""
    return external_id[:4] + "***" if len(external_id) > 4 else "***"


class PairReused(Exception):
    """The request's (timestamp, nonce) came before with another body (`Inbound.pair`):
    nothing of it was done; the adapter refuses it."""


Decide = Callable[[Inbound, Member | None, dict[str, Any]], Awaitable[str]]


class _Refused(Exception):
    """A command's input was unusable: roll back, answer how to use it."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply

    async def answer(self, _inbound: Inbound, _member: Member | None, _: dict[str, Any]) -> str:
        return self.reply


class Conversation:
    """Answers inbound messages from any channel with the same router and handlers."""

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        sessions: Sessions,
        rules: Rules,
        router: Router,
        standings: Standings | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sessions = sessions
        self.rules = rules
        self.router = router
        self.report_context = Context(settings.zone, settings.daily_goal_minutes, rules)
        if standings is None:
            engine = sessions.kw["bind"]
            compute = computation_for(engine, self.report_context)
            max_age = dt.timedelta(seconds=settings.standings_max_age_seconds)
            standings = Standings(clock, compute, max_age=max_age)
        self.standings = standings

    async def respond(self, inbound: Inbound) -> str:
        """The reply text for `inbound` ("" for none); a retried message gets the first reply.
        PairReused when its request's pair came before with another body."""
        context = {"channel": inbound.sender.channel, "sender": mask(inbound.sender.external_id)}
        try:
            try:
                return await self._respond_once(inbound)
            except DBAPIError as error:
                if not error.connection_invalidated:
                    raise
                # The connection died under the transaction (a database restart): nothing of
                # it was kept and the pool has connected anew, so the message is answered again.
                log.warning(
                    "database connection lost; answering %s again", inbound.key, extra=context
                )
                return await self._respond_once(inbound)
        except processed.AlreadyProcessed:
            log.info("duplicate message %s", inbound.key, extra=context)
            async with transaction(self.sessions) as session:
                reply = await processed.stored_reply(session, inbound.sender.channel, inbound.key)
            return reply or ""
        except PairReused:
            raise
        except Exception:
            log.exception("failed to answer message %s", inbound.key, extra=context)
            return render("error")

    async def _respond_once(self, inbound: Inbound) -> str:
        # The command is matched once: it says whether the standings are needed, then runs.
        matched = self.router.match(inbound.text) if inbound.kind is InboundKind.TEXT else None
        standings = await self._standings_for(matched)
        try:
            decide = functools.partial(self._dispatch, matched)
            return await self._in_transaction(inbound, decide, standings)
        except _Refused as refused:
            # Bad input changes nothing: what the handler wrote went with the rollback. The
            # message is kept with its usage answer in a transaction of its own (cheaper on
            # the common path than a savepoint around every handler).
            return await self._in_transaction(inbound, refused.answer, standings)

    async def _standings_for(self, matched: tuple[Command, str] | None) -> MonthStandings | None:
        """The month's standings, when the command asks for them: fetched before the
        transaction, because waiting for a computation inside it would hold SQLite's write
        lock (every other message's turn) or a pooled PostgreSQL connection meanwhile."""
        if matched is None or "standings" not in matched[0].params:
            return None
        return await self.standings.month_so_far()

    async def _in_transaction(
        self, inbound: Inbound, decide: Decide, standings: MonthStandings | None = None
    ) -> str:
        now = self.clock.now()
        async with transaction(self.sessions) as session:
            pair = inbound.pair
            if pair is not None and not await seen_requests.remember(
                session, inbound.sender.channel, pair.timestamp, pair.nonce, pair.digest, now
            ):
                raise PairReused
            found = await members.sender_state(session, inbound.sender)
            member = found.member if found else None
            vouched = None
            if found is None and inbound.vouched:
                vouched = await membership.bind_vouched(session, self.clock, inbound.sender)
                member = vouched
            if found is not None and inbound.window is not None:
                until, budget = now + inbound.window.duration, inbound.window.budget
                await members.open_window(session, found.window, until, budget)
            available = {
                "member": member,
                "session": session,
                "clock": self.clock,
                "settings": self.settings,
                "rules": self.rules.points,
                "sender": inbound.sender,
                "today": today(self.clock),
                "router": self.router,
                "report_context": self.report_context,
                "inbound": inbound,
                "standings": standings,
                "args": "",
            }
            reply = await decide(inbound, member, available)
            if vouched is not None:
                branch = await members.branch_name(session, vouched.branch_id)
                channel = channel_name(inbound.sender.channel)
                reply = render(
                    "bind_vouched", channel=channel, name=vouched.name, branch=branch, reply=reply
                )
            if found is not None and found.waiting and inbound.kind is InboundKind.TEXT:
                assert found.member.id is not None
                reply = await self._with_notices(
                    session, found.member.id, inbound.sender.channel, reply, now
                )
            await processed.record(session, inbound.sender.channel, inbound.key, reply, now)
        return reply

    async def _with_notices(
        self, session: AsyncSession, member_id: int, channel: str, reply: str, now: dt.datetime
    ) -> str:
        """Prepend what waits for the member (notices, pushes not sent yet) as far as it fits:
        a passive reply costs no push budget. The rest waits for the next reply."""
        notices = await mailbox.open_items(session, member_id)
        pushes = await outbox.waiting_for(session, member_id, channel, now)
        waiting: list[MailboxItem | OutboxItem] = [*notices, *pushes]
        shown: list[str] = []
        taken: list[MailboxItem | OutboxItem] = []
        for item in waiting:
            line = item.text if isinstance(item, MailboxItem) else item.brief
            if not fits(render("mailbox", notices=[*shown, line], reply=reply)):
                break
            shown.append(line)
            taken.append(item)
        if not taken:
            return reply
        mailbox.mark_delivered(session, [i for i in taken if isinstance(i, MailboxItem)], now)
        for item in taken:
            if isinstance(item, OutboxItem):
                outbox.deliver_in_reply(session, item, now)
        return render("mailbox", notices=shown, reply=reply)

    async def _dispatch(
        self,
        matched: tuple[Command, str] | None,
        inbound: Inbound,
        member: Member | None,
        available: dict[str, Any],
    ) -> str:
        if inbound.kind is not InboundKind.TEXT:
            event = self.router.event_handler(inbound.kind)
            if event is not None:
                return await call(*event, available)
            return render("unsupported") if inbound.kind is InboundKind.UNSUPPORTED else ""
        answered = await self._dialog_answer(inbound, member, available)
        if answered is not None:
            return answered
        if matched is None:
            return render("unknown") if member else self._bind_prompt()
        command, args = matched
        if command.role is not None:
            if member is None:
                return self._bind_prompt()
            if Role(member.role).rank < command.role.rank:
                return render("no_permission", command=command.name)
        return await self._run(command, args, available)

    async def _dialog_answer(
        self, inbound: Inbound, member: Member | None, available: dict[str, Any]
    ) -> str | None:
        """The reply of the dialog the member is in, if any takes this text; only staff
        (the roles dialogs are declared for) cost the look-up."""
        lowest = self.router.dialog_role
        if member is None or member.id is None or lowest is None:
            return None
        if Role(member.role).rank < lowest.rank:
            return None
        found = await dialogs.active(available["session"], member.id, self.clock.now())
        step = self.router.dialog_handler(found[0]) if found else None
        if step is None:
            return None
        return await call_dialog(*step, available)

    def _bind_prompt(self) -> str:
        return render("bind_prompt", proof=self.settings.bind_proof)

    async def _run(self, command: Command, args: str, available: dict[str, Any]) -> str:
        try:
            available["args"] = command.read_args(args)
            return await call(command.handler, command.params, available)
        except UsageError as problem:
            # A handler may find the problem after writing: the transaction is rolled back.
            hint = render(f"hints/{problem.hint}", **problem.details) if problem.hint else ""
            raise _Refused(render("usage", usage=command.usage, hint=hint)) from None
