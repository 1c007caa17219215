"""Members, branches and their chat bindings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.messages import Sender
from data import mailbox
from data.db import loaded, run
from data.models import BindFailure, Binding, Branch, Member, Role
from data.planned import planned


@dataclass(frozen=True)
class RosterRow:
    member_id: str
    name: str
    branch: str
    role: Role
    phone_tail: str | None = None  # None: the file has no phone column (keep what is stored)


@dataclass(frozen=True)
class MemberChange:
    """A member the import added (`before` empty) or changed: the fields that differ."""

    member: Member
    before: dict[str, str]
    after: dict[str, str]


@dataclass(frozen=True)
class RosterImport:
    added: int
    updated: int
    changes: list[MemberChange]
    absent: list[Member]  # members not in the file who have not left
    left: list[Member] = field(default_factory=list)  # of them, the ones marked left


# How much earlier than the platform's a recorded contact window may end (`open_window`).
WINDOW_SLACK = dt.timedelta(minutes=1)


class AlreadyBound(Exception):
    """The member has an account on this channel already, or this account has a member."""


@dataclass(frozen=True)
class Window:
    """A chat account's push window as last recorded (see `open_window`)."""

    binding_id: int
    until: dt.datetime | None
    budget: int
    used: int


@dataclass(frozen=True)
class SenderState:
    """What the first query of a message finds about its sender."""

    member: Member
    window: Window
    waiting: bool  # open notices or pending pushes to fold into the reply (`data.mailbox`)


# Built once: the first query of every message (the member's columns, made the session's
# ORM object by `data.db.loaded` since handlers get a Member; the window and what waits as
# plain columns). It locks the member's row for the message's transaction: one member's
# messages (from any of their channels) run one after the other, so what a handler reads
# before it awards (the day's study points, an earlier quiz answer) is still true when it
# writes — two check-ins at the same moment cannot both find the day empty. On SQLite,
# BEGIN IMMEDIATE already serialises writers.
_MEMBER_COLUMNS = len(Member.__table__.columns)  # type: ignore[attr-defined]
_SENDER_STATE = (
    select(
        *Member.__table__.columns,  # type: ignore[attr-defined]
        col(Binding.id),
        col(Binding.window_until),
        col(Binding.window_budget),
        col(Binding.window_used),
        mailbox.anything_waiting(col(Member.id)),
    )
    .join(Binding, col(Binding.member_id) == col(Member.id))
    .where(
        col(Binding.channel) == bindparam("channel"),
        col(Binding.external_id) == bindparam("external_id"),
    )
    .with_for_update(of=Member)  # type: ignore[arg-type]
)
_SENDER_STATE = planned(_SENDER_STATE)
_OPEN_WINDOW = (
    update(Binding)
    .where(col(Binding.id) == bindparam("binding_id"))
    .values(window_until=bindparam("until"), window_budget=bindparam("budget"), window_used=0)
)
_OPEN_WINDOW = planned(_OPEN_WINDOW)


async def member_for(session: AsyncSession, sender: Sender) -> Member | None:
    found = await sender_state(session, sender)
    return found.member if found else None


async def sender_state(session: AsyncSession, sender: Sender) -> SenderState | None:
    """The member behind a chat account, that account's push window and whether anything
    waits for the member, in one query; None for an account nobody has bound."""
    params = {"channel": sender.channel, "external_id": sender.external_id}
    row = (await run(session, _SENDER_STATE, params)).first()
    if row is None:
        return None
    member = loaded(session, Member, row[:_MEMBER_COLUMNS])
    binding_id, until, budget, used, waiting = row[_MEMBER_COLUMNS:]
    return SenderState(member, Window(binding_id, until, budget, used), bool(waiting))


async def member_by_roster_id(session: AsyncSession, roster_id: str) -> Member | None:
    return (await session.exec(select(Member).where(Member.roster_id == roster_id))).first()


async def branch_name(session: AsyncSession, branch_id: int) -> str:
    branch = await session.get(Branch, branch_id)
    return branch.name if branch else ""


async def bind(session: AsyncSession, sender: Sender, member: Member, at: dt.datetime) -> Binding:
    """Link the chat account to the member; `AlreadyBound` if either side is taken."""
    binding = Binding(
        channel=sender.channel, external_id=sender.external_id, member_id=member.id, bound_at=at
    )
    try:
        async with session.begin_nested():
            session.add(binding)
    except IntegrityError:
        raise AlreadyBound from None
    return binding


async def mark_unreachable(session: AsyncSession, sender: Sender) -> bool:
    statement = select(Binding).where(
        Binding.channel == sender.channel, Binding.external_id == sender.external_id
    )
    binding = (await session.exec(statement)).first()
    if binding is None:
        return False
    binding.reachable = False
    session.add(binding)
    return True


async def mark_reachable(session: AsyncSession, sender: Sender) -> None:
    statement = select(Binding).where(
        Binding.channel == sender.channel, Binding.external_id == sender.external_id
    )
    binding = (await session.exec(statement)).first()
    if binding is not None and not binding.reachable:
        binding.reachable = True
        session.add(binding)


async def bindings_of_member(session: AsyncSession, member_id: int) -> list[Binding]:
    statement = select(Binding).where(Binding.member_id == member_id).order_by(col(Binding.channel))
    return list(await session.exec(statement))


async def remove_bindings(
    session: AsyncSession, member_id: int, channels: Sequence[str] | None = None
) -> list[Binding]:
    """End the member's bindings (on these channels, or all); returns the ones ended."""
    ended = [
        binding
        for binding in await bindings_of_member(session, member_id)
        if channels is None or binding.channel in channels
    ]
    for binding in ended:
        await session.delete(binding)
    await session.flush()  # the account may bind again in this same transaction
    return ended


async def record_bind_failure(session: AsyncSession, sender: Sender, at: dt.datetime) -> None:
    session.add(BindFailure(channel=sender.channel, external_id=sender.external_id, at=at))


async def bind_failures_since(session: AsyncSession, sender: Sender, since: dt.datetime) -> int:
    statement = select(func.count()).where(
        BindFailure.channel == sender.channel,
        BindFailure.external_id == sender.external_id,
        BindFailure.at >= since,
    )
    return (await session.exec(statement)).one()


async def branch_ids_by_name(session: AsyncSession, names: set[str]) -> dict[str, int]:
    """The ids of the named branches, creating the ones that do not exist yet."""
    existing = await session.exec(select(Branch).where(col(Branch.name).in_(names)))
    ids = {branch.name: branch.id for branch in existing if branch.id is not None}
    for name in sorted(names - ids.keys()):
        branch = Branch(name=name)
        session.add(branch)
        await session.flush()
        assert branch.id is not None
        ids[name] = branch.id
    return ids


@dataclass(frozen=True)
class RosterPlan:
    """What importing `rows` would change, compared with the database as it is: nothing is
    written to find it, so a preview and the import itself compare the same way."""

    rows: Sequence[RosterRow]
    known: dict[str, Member]  # the file's members already in the database, by member_id
    added: list[RosterRow]
    updated: list[MemberChange]  # known members whose name, branch or role differ
    unchanged: int
    absent: list[Member]  # members not in the file who have not left, by member_id
    new_branches: list[str]  # branches the file names that do not exist yet


async def plan_roster(session: AsyncSession, rows: Sequence[RosterRow]) -> RosterPlan:
    """Compare the file with the members stored (one query each for members and branches).

    A member who has left keeps the role `member` whatever the file says: a role is for
    someone who can act (`qiyi members leave --undo` first).
    """
    everyone = {member.roster_id: member for member in await session.exec(select(Member))}
    branch_names = {branch.id: branch.name for branch in await session.exec(select(Branch))}
    known: dict[str, Member] = {}
    added: list[RosterRow] = []
    updated: list[MemberChange] = []
    for row in rows:
        member = everyone.get(row.member_id)
        if member is None:
            added.append(row)
            continue
        known[row.member_id] = member
        before = {"name": member.name, "branch": branch_names.get(member.branch_id, "")}
        before["role"] = member.role
        role = Role.MEMBER.value if member.left_on else row.role.value
        after = {"name": row.name, "branch": row.branch, "role": role}
        differs = [key for key in after if before[key] != after[key]]
        if differs:
            was = {key: before[key] for key in differs}
            updated.append(MemberChange(member, was, {key: after[key] for key in differs}))
    absent = sorted(
        (m for m in everyone.values() if m.roster_id not in known and m.left_on is None),
        key=lambda member: member.roster_id,
    )
    new_branches = sorted({row.branch for row in rows} - set(branch_names.values()))
    unchanged = len(known) - len(updated)
    return RosterPlan(rows, known, added, updated, unchanged, absent, new_branches)


async def apply_roster(session: AsyncSession, plan: RosterPlan, at: dt.datetime) -> RosterImport:
    """Write the plan: new members inserted, known ones updated by member_id (the phone's
    last digits too when the file has them); what changed, for the audit rows."""
    branches = await branch_ids_by_name(session, {row.branch for row in plan.rows})
    updated = {change.member.roster_id: change for change in plan.updated}
    changes: list[MemberChange] = []
    for row in plan.rows:
        member = plan.known.get(row.member_id)
        if member is None:
            member = Member(roster_id=row.member_id, joined_at=at, name="", branch_id=0)
            after = {"name": row.name, "branch": row.branch, "role": row.role.value}
            changes.append(MemberChange(member, {}, after))
        elif row.member_id in updated:
            changes.append(updated[row.member_id])
        member.name = row.name
        member.branch_id = branches[row.branch]
        member.role = Role.MEMBER.value if member.left_on else row.role.value
        if row.phone_tail is not None:
            member.phone_tail = row.phone_tail
        session.add(member)
    await session.flush()  # the new members' ids, for the audit rows
    return RosterImport(len(plan.added), len(plan.known), changes, plan.absent)


async def upsert_roster(
    session: AsyncSession, rows: Sequence[RosterRow], at: dt.datetime
) -> RosterImport:
    """Insert new members and update known ones by member_id (`plan_roster`, then
    `apply_roster`); what changed, and who of the members still in the organisation the
    file leaves out."""
    return await apply_roster(session, await plan_roster(session, rows), at)


@dataclass(frozen=True)
class MemberListing:
    member_id: str
    name: str
    branch: str
    role: str
    channels: str
    left_on: str = ""  # the day the member left, ISO; "" while a member


async def list_members(session: AsyncSession, branch_id: int | None = None) -> list[MemberListing]:
    """Everyone (who left too), by branch and member_id; of one branch when it is given."""
    bindings: dict[int, list[str]] = {}
    channels = select(Binding).order_by(col(Binding.channel))
    statement = (
        select(Member, Branch.name)
        .join(Branch, col(Branch.id) == col(Member.branch_id))
        .order_by(col(Branch.name), col(Member.roster_id))
    )
    if branch_id is not None:
        statement = statement.where(Member.branch_id == branch_id)
        channels = channels.join(Member, col(Member.id) == col(Binding.member_id)).where(
            Member.branch_id == branch_id
        )
    for binding in await session.exec(channels):
        bindings.setdefault(binding.member_id, []).append(binding.channel)
    return [
        MemberListing(
            member.roster_id,
            member.name,
            branch,
            member.role,
            ",".join(bindings.get(member.id, [])),
            member.left_on.isoformat() if member.left_on else "",
        )
        for member, branch in await session.exec(statement)
    ]


async def open_window(
    session: AsyncSession, window: Window, until: dt.datetime, budget: int
) -> None:
    """The member just wrote (or clicked): the platform lets us push until `until`, `budget` times.

    A shorter window (a click's minute) never cuts a longer one that is still open.
    """
    current = window.until
    if current is not None and current > until and window.used < window.budget:
        return
    recent = current is not None and current >= until - WINDOW_SLACK
    if recent and (window.budget, window.used) == (budget, 0):
        # Opened less than a minute ago and untouched since: keeping it saves a write per
        # message of a conversation, and ends the window at most a minute early (safe).
        return
    params = {"binding_id": window.binding_id, "until": until, "budget": budget}
    await run(session, _OPEN_WINDOW, params)


async def bindings_of(
    session: AsyncSession, member_ids: Sequence[int], channel: str
) -> dict[int, Binding]:
    statement = select(Binding).where(
        col(Binding.member_id).in_(member_ids), Binding.channel == channel
    )
    return {binding.member_id: binding for binding in await session.exec(statement)}


async def all_bindings_of(
    session: AsyncSession, member_ids: Sequence[int]
) -> dict[int, list[Binding]]:
    """Every binding of each member, on any channel."""
    statement = select(Binding).where(col(Binding.member_id).in_(member_ids))
    found: dict[int, list[Binding]] = {}
    for binding in await session.exec(statement.order_by(col(Binding.channel))):
        found.setdefault(binding.member_id, []).append(binding)
    return found


async def bindings_by_roster_id(session: AsyncSession) -> dict[str, list[Binding]]:
    """Every binding, by the member's roster id (the member list's reachable rungs)."""
    statement = select(Member.roster_id, Binding).join(
        Binding, col(Binding.member_id) == col(Member.id)
    )
    found: dict[str, list[Binding]] = {}
    for roster_id, binding in await session.exec(statement.order_by(col(Binding.channel))):
        found.setdefault(roster_id, []).append(binding)
    return found


async def branches_of(session: AsyncSession, member_ids: Sequence[int]) -> dict[int, int]:
    statement = select(Member.id, Member.branch_id).where(col(Member.id).in_(member_ids))
    return {mid: branch for mid, branch in await session.exec(statement) if mid is not None}


async def current_members(
    session: AsyncSession, branch: str | None = None, roster_ids: Sequence[str] = ()
) -> list[tuple[Member, str]]:
    """(member, branch name) of the members who have not left, of one branch and/or these
    member_ids (all when neither is given), by branch and member_id."""
    statement = (
        select(Member, Branch.name)
        .join(Branch, col(Branch.id) == col(Member.branch_id))
        .where(col(Member.left_on).is_(None))
        .order_by(col(Branch.name), col(Member.roster_id))
    )
    if branch is not None:
        statement = statement.where(Branch.name == branch)
    if roster_ids:
        statement = statement.where(col(Member.roster_id).in_(roster_ids))
    return [(member, name) for member, name in await session.exec(statement)]
