"""The media store's rules, run against both backends (a directory and S3 on loopback)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import ConfigError, load_settings
from data.media.s3 import parse_url
from data.media.store import MediaStore, NotStored, Spooled, TooLarge, fan_out

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


async def stream(data: bytes, chunk: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


def spooled_files(store: MediaStore) -> list[Path]:
    return list(store.spool_dir.glob("*")) if store.spool_dir.exists() else []


async def test_a_file_is_kept_under_its_sha256(media_store: MediaStore) -> None:
    stored = await media_store.put(stream(PNG), limit=len(PNG))
    assert stored.sha256 == hashlib.sha256(PNG).hexdigest()
    assert (stored.size, stored.existed) == (len(PNG), False)
    assert await media_store.exists(stored.sha256)
    assert await media_store.size(stored.sha256) == len(PNG)
    assert await media_store.read(stored.sha256) == PNG
    assert spooled_files(media_store) == []  # the temporary file went


async def test_the_same_bytes_are_stored_once(media_store: MediaStore) -> None:
    first = await media_store.put(stream(PNG), limit=len(PNG))
    again = await media_store.put(stream(PNG, chunk=7), limit=len(PNG))
    assert (again.sha256, again.existed, first.existed) == (first.sha256, True, False)


async def test_a_stream_over_the_limit_is_stopped_and_nothing_kept(
    media_store: MediaStore,
) -> None:
    seen: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1000):
            seen.append(1)
            yield b"x" * 1000

    with pytest.raises(TooLarge):
        await media_store.put(endless(), limit=10_000)
    assert len(seen) == 11  # stopped at the chunk that passed the limit, not read to the end
    sha = hashlib.sha256(b"x" * 10_000).hexdigest()
    assert not await media_store.exists(sha)
    assert spooled_files(media_store) == []


async def test_a_refused_check_keeps_nothing(media_store: MediaStore) -> None:
    def refuse(spooled: Spooled) -> None:
        assert spooled.head == PNG[:64] and spooled.size == len(PNG)
        raise ValueError("not wanted")

    with pytest.raises(ValueError, match="not wanted"):
        await media_store.put(stream(PNG), limit=len(PNG), check=refuse)
    assert not await media_store.exists(hashlib.sha256(PNG).hexdigest())
    assert spooled_files(media_store) == []


async def test_a_missing_file_is_not_stored(media_store: MediaStore) -> None:
    missing = "0" * 64
    assert not await media_store.exists(missing)
    with pytest.raises(NotStored):
        await media_store.size(missing)
    with pytest.raises(NotStored):
        await media_store.read(missing)


@pytest.mark.parametrize("outside", ["../../etc/passwd", "A" * 64, "0" * 63, "/etc/passwd"])
async def test_no_name_from_outside_becomes_a_path(media_store: MediaStore, outside: str) -> None:
    with pytest.raises(ValueError, match="not a media address"):
        await media_store.exists(outside)
    with pytest.raises(ValueError, match="not a media address"):
        fan_out(outside)


def test_files_fan_out_by_their_first_bytes() -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    assert fan_out(sha) == f"{sha[:2]}/{sha[2:4]}/{sha}"


@pytest.mark.parametrize(
    "url",
    ["http://key:secret@host/bucket", "s3://key:secret@host", "s3://host/bucket", "s3://k:s@h:x/b"],
)
def test_a_malformed_s3_url_is_one_line_without_the_secret(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(_env_file=None, media_s3_url=url)
    message = str(raised.value)
    assert message.startswith("QIYI_MEDIA_S3_URL: ")
    assert "secret" not in message and "\\n" not in message


def test_an_s3_url_names_endpoint_bucket_prefix_and_region() -> None:
    where = parse_url(
        "s3://AK%2F1:S%40cret@minio.local:9000/qiyi/media/files?region=cn-1&secure=false"
    )
    assert (where.endpoint, where.bucket, where.prefix) == (
        "minio.local:9000",
        "qiyi",
        "media/files",
    )
    assert (where.access_key, where.secret_key) == ("AK/1", "S@cret")
    assert (where.region, where.secure) == ("cn-1", False)
    assert parse_url("s3://a:b@s3.example.com/bucket").secure is True
