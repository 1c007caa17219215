"""Files uploaded to a platform as temporary media: the media id while it may be reused.

Two dispatchers may upload the same file at the same moment; the later answer replaces the
earlier row (both media ids work for their 3 days), so nothing breaks and the next push
reuses one of them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from data.models import PlatformUpload


async def fresh(
    session: AsyncSession, channel: str, sha256: str, now: dt.datetime, reuse: dt.timedelta
) -> str | None:
    """The media id of the file's last upload, when it is younger than `reuse`."""
    statement = select(PlatformUpload).where(
        PlatformUpload.channel == channel, PlatformUpload.sha256 == sha256
    )
    row = (await session.exec(statement)).first()
    if row is None or row.uploaded_at <= now - reuse:
        return None
    return row.media_id


async def remember(
    session: AsyncSession, channel: str, sha256: str, media_id: str, at: dt.datetime
) -> None:
    """Keep the media id of an upload just made (over an older one of the same file)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    row = {"channel": channel, "sha256": sha256, "media_id": media_id, "uploaded_at": at}
    statement = insert(PlatformUpload).values(row)
    statement = statement.on_conflict_do_update(
        index_elements=["channel", "sha256"],
        set_={"media_id": statement.excluded.media_id, "uploaded_at": at},
    )
    await session.exec(statement)


async def forget(session: AsyncSession, channel: str, sha256: str, media_id: str) -> None:
    """The platform no longer knows this media id (40007): the next push uploads again."""
    await session.exec(
        delete(PlatformUpload).where(
            PlatformUpload.channel == channel,  # type: ignore[arg-type]
            PlatformUpload.sha256 == sha256,  # type: ignore[arg-type]
            PlatformUpload.media_id == media_id,  # type: ignore[arg-type]
        )
    )
