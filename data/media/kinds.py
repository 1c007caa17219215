"""What a material's bytes are: the MIME type read from their magic numbers, checked
against the type the platform declared and against the kind of material (picture, video,
file), and the size each kind may have."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 64  # enough for every signature below

JPEG = "image/jpeg"
PNG = "image/png"
GIF = "image/gif"
WEBP = "image/webp"
MP4 = "video/mp4"
AMR = "audio/amr"
MP3 = "audio/mpeg"
PDF = "application/pdf"
ZIP = "application/zip"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

IMAGES = frozenset({JPEG, PNG, GIF, WEBP})
# What each kind of material may be; a file may be any type this module recognises.
ALLOWED = {
    "image": IMAGES,
    "video": frozenset({MP4}),
    "voice": frozenset({AMR, MP3}),
    "file": IMAGES | {MP4, AMR, MP3, PDF, DOCX, XLSX, PPTX},
}
# Names the platforms use for the same types.
ALIASES = {
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "audio/mp3": MP3,
    "audio/x-mpeg": MP3,
    "video/mpeg4": MP4,
    "application/x-pdf": PDF,
}
# Declared types that say nothing about the bytes: only the bytes decide then.
UNDECLARED = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# The part each Office Open XML document must have (a plain zip has none of them).
OFFICE_PARTS = {"word/document.xml": DOCX, "xl/workbook.xml": XLSX, "ppt/presentation.xml": PPTX}


class Refused(Exception):
    """The bytes are not something a material may be (the message says why, in English)."""


@dataclass(frozen=True)
class Limits:
    """The largest file of each kind, in bytes."""

    image: int
    video: int
    file: int

    def of(self, kind: str) -> int:
        return {"image": self.image, "video": self.video}.get(kind, self.file)


def sniff(head: bytes) -> str | None:
    """The type the first bytes show, or None when none of the known signatures matches.
    A zip is `ZIP` here; `office_type` tells which document it is."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp":
        return MP4
    if head.startswith(b"#!AMR"):
        return AMR
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return MP3
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    return None


def office_type(path: Path) -> str | None:
    """Which Office Open XML document the zip at `path` is, if any (reads its directory)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return None
    return next((mime for part, mime in OFFICE_PARTS.items() if part in names), None)


def declared(content_type: str | None) -> str:
    """The declared type without its parameters, lower-case, aliases resolved."""
    bare = (content_type or "").split(";", 1)[0].strip().lower()
    return ALIASES.get(bare, bare)


def check(kind: str, content_type: str | None, head: bytes, path: Path) -> str:
    """The material's MIME type, read from its bytes (the file at `path`, starting `head`).
    Refused when the bytes are of no known type, not of the material's kind, or not what
    the platform declared them to be."""
    found = sniff(head)
    if found == ZIP:
        found = office_type(path)
    if found is None:
        raise Refused("the bytes are of no accepted type")
    said = declared(content_type)
    office_as_zip = said == ZIP and found in OFFICE_PARTS.values()
    if said not in UNDECLARED and said != found and not office_as_zip:
        raise Refused(f"declared {said[:60]} but the bytes are {found}")
    if found not in ALLOWED.get(kind, ALLOWED["file"]):
        raise Refused(f"{found} is not accepted as kind {kind}")
    return found
