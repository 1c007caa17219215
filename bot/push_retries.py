"""Failed pushes sent again, by staff from the console or the command line: one operation,
audited whichever door was used."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from data import audit, outbox


async def retry(
    session: AsyncSession, actor: audit.Actor, item_ids: Sequence[int] | None, at: dt.datetime
) -> int:
    """These failed pushes (None: every failed one) back to pending, due now; how many."""
    if item_ids is None:
        again = await outbox.retry_failed(session, at)
    else:
        again = 0
        for item_id in item_ids:
            again += await outbox.retry_failed(session, at, item_id)
    if again:
        await audit.record(
            session,
            actor,
            "outbox.retry",
            object_type="outbox",
            object_id="all" if item_ids is None else ",".join(map(str, item_ids))[:80],
            branch_id=None,
            at=at,
            after={"retried": again},
        )
    return again
