"""The media store in S3-compatible object storage (MinIO, Tencent COS, Alibaba OSS, AWS),
through the MinIO client, whose blocking calls run in threads.

`QIYI_MEDIA_S3_URL=s3://KEY:SECRET@host:port/bucket[/prefix]?region=…&secure=false`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from minio import Minio
from minio.error import S3Error

from data.media.store import CHUNK_BYTES, MediaStore, NotStored, Spooled, fan_out

MISSING = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})


class S3UrlError(ValueError):
    """The S3 URL is malformed (the message never repeats it: it holds a secret)."""


@dataclass(frozen=True)
class S3Location:
    endpoint: str  # host:port
    access_key: str
    secret_key: str
    bucket: str
    prefix: str
    secure: bool
    region: str | None


def parse_url(url: str) -> S3Location:
    """`s3://KEY:SECRET@host:port/bucket[/prefix]?region=…&secure=false` (https unless
    `secure=false`); S3UrlError, without the URL, when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise S3UrlError("write s3://KEY:SECRET@host:port/bucket") from None
    if parts.scheme != "s3" or not parts.hostname or not parts.username:
        raise S3UrlError("write s3://KEY:SECRET@host:port/bucket")
    bucket, _, prefix = parts.path.strip("/").partition("/")
    if not bucket:
        raise S3UrlError("no bucket: write s3://KEY:SECRET@host:port/bucket")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return S3Location(
        endpoint=parts.hostname + (f":{port}" if port else ""),
        access_key=unquote(parts.username),
        secret_key=unquote(parts.password or ""),
        bucket=bucket,
        prefix=prefix.strip("/"),
        secure=query.get("secure", "true").lower() not in ("false", "0", "no"),
        region=query.get("region") or None,
    )


class S3Store(MediaStore):
    def __init__(self, client: Minio, bucket: str, prefix: str, spool_dir: Path) -> None:
        super().__init__(spool_dir)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, spool_dir: Path) -> S3Store:
        where = parse_url(url)
        client = Minio(
            where.endpoint,
            access_key=where.access_key,
            secret_key=where.secret_key,
            secure=where.secure,
            region=where.region,
        )
        return cls(client, where.bucket, where.prefix, spool_dir)

    def _key(self, sha256: str) -> str:
        return f"{self.prefix}/{fan_out(sha256)}" if self.prefix else fan_out(sha256)

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (a first start, a test server)."""
        if not await asyncio.to_thread(self.client.bucket_exists, self.bucket):
            await asyncio.to_thread(self.client.make_bucket, self.bucket)

    async def _stat(self, sha256: str) -> Any:
        try:
            return await asyncio.to_thread(self.client.stat_object, self.bucket, self._key(sha256))
        except S3Error as error:
            if error.code in MISSING:
                raise NotStored(sha256) from None
            raise

    async def exists(self, sha256: str) -> bool:
        try:
            await self._stat(sha256)
        except NotStored:
            return False
        return True

    async def size(self, sha256: str) -> int:
        return int((await self._stat(sha256)).size)

    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        try:
            response = await asyncio.to_thread(
                self.client.get_object, self.bucket, self._key(sha256)
            )
        except S3Error as error:
            if error.code in MISSING:
                raise NotStored(sha256) from None
            raise
        try:
            stream = response.stream(CHUNK_BYTES)
            while chunk := await asyncio.to_thread(next, stream, b""):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def _keep(self, spooled: Spooled) -> None:
        # One part in flight: the client holds a part (5 MiB and up) in memory while it sends.
        await asyncio.to_thread(
            self.client.fput_object,
            self.bucket,
            self._key(spooled.sha256),
            str(spooled.path),
            num_parallel_uploads=1,
        )
