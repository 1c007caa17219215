"""Each type is read from its bytes; a body whose bytes are not what its type says is
refused; each kind of material takes only its types."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from data.media import kinds
from data.media.kinds import Refused

SAMPLES = {
    kinds.JPEG: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    kinds.PNG: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    kinds.GIF: b"GIF89a\x01\x00\x01\x00",
    kinds.WEBP: b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    kinds.MP4: b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00",
    kinds.AMR: b"#!AMR\n\x3c\x00",
    kinds.MP3: b"ID3\x04\x00\x00\x00\x00\x00\x00",
    kinds.PDF: b"%PDF-1.7\n%\xe2\xe3",
}


def office(tmp_path: Path, part: str) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(part, "<x/>")
    path = tmp_path / "document"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize(("mime", "head"), SAMPLES.items())
def test_each_type_is_read_from_its_bytes(mime: str, head: bytes, tmp_path: Path) -> None:
    assert kinds.sniff(head) == mime
    assert kinds.check("file", mime, head, tmp_path / "unused") == mime


@pytest.mark.parametrize(
    ("part", "mime"),
    [("word/document.xml", kinds.DOCX), ("xl/workbook.xml", kinds.XLSX),
     ("ppt/presentation.xml", kinds.PPTX)],
)  # fmt: skip
def test_office_documents_are_told_apart_by_their_parts(
    tmp_path: Path, part: str, mime: str
) -> None:
    path = office(tmp_path, part)
    head = path.read_bytes()[:64]
    assert kinds.check("file", mime, head, path) == mime
    assert kinds.check("file", "application/octet-stream", head, path) == mime


def test_a_plain_zip_is_no_document(tmp_path: Path) -> None:
    path = office(tmp_path, "notes.txt")
    with pytest.raises(Refused, match="no accepted type"):
        kinds.check("file", "application/zip", path.read_bytes()[:64], path)


def test_bytes_that_are_not_what_the_type_says_are_refused(tmp_path: Path) -> None:
    page = b"<html><body>error</body></html>"
    with pytest.raises(Refused, match="no accepted type"):
        kinds.check("image", "image/jpeg", page, tmp_path / "unused")
    with pytest.raises(Refused, match="declared image/jpeg but the bytes are image/png"):
        kinds.check("image", "image/jpeg", SAMPLES[kinds.PNG], tmp_path / "unused")


def test_aliases_and_parameters_of_the_declared_type_are_understood(tmp_path: Path) -> None:
    jpeg = SAMPLES[kinds.JPEG]
    assert kinds.check("image", "image/jpg; charset=binary", jpeg, tmp_path) == kinds.JPEG
    assert kinds.check("image", "", jpeg, tmp_path) == kinds.JPEG


def test_each_kind_takes_only_its_types(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="application/pdf is not accepted as kind image"):
        kinds.check("image", "application/pdf", SAMPLES[kinds.PDF], tmp_path)
    with pytest.raises(Refused, match="image/png is not accepted as kind video"):
        kinds.check("video", "image/png", SAMPLES[kinds.PNG], tmp_path)
    assert kinds.check("video", "video/mp4", SAMPLES[kinds.MP4], tmp_path) == kinds.MP4


def test_size_limits_per_kind() -> None:
    limits = kinds.Limits(image=1, video=2, file=3)
    assert [limits.of(kind) for kind in ("image", "video", "file", "voice")] == [1, 2, 3, 3]
