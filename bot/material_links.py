"""Linking a material (资料) to the activity it records, or unlinking it — by hand in the
console (chat links one by its day as it is sent). Within scope: a secretary's own branch's
materials, to an activity that takes in that branch; audited."""

from __future__ import annotations

import datetime as dt

from sqlmodel.ext.asyncio.session import AsyncSession

from data import activities, audit
from data.models import Material, Member, Role


class OutOfScope(LookupError):
    """No such material or activity for this staff member (the console answers 404)."""


async def set_activity(
    session: AsyncSession,
    material_id: int,
    activity_id: int | None,
    staff: Member,
    actor: audit.Actor,
    now: dt.datetime,
) -> Material:
    """Link the material to the activity (None: unlink it) and record who did. The material
    must be in the staff member's scope and the activity must take in its branch."""
    material = await session.get(Material, material_id, with_for_update=True)
    admin = staff.role == Role.ADMIN.value
    if material is None or not (admin or material.branch_id == staff.branch_id):
        raise OutOfScope()
    if activity_id is not None:
        activity = await activities.get(session, activity_id)
        if activity is None or not await activities.takes_in_branch(
            session, activity, material.branch_id
        ):
            raise OutOfScope()
    before = material.activity_id
    if before == activity_id:
        return material
    material.activity_id = activity_id
    session.add(material)
    await audit.record(
        session,
        actor,
        "material.link" if activity_id is not None else "material.unlink",
        object_type="material",
        object_id=material.id,
        branch_id=material.branch_id,
        at=now,
        before={"activity_id": before},
        after={"activity_id": activity_id},
    )
    return material
