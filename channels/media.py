"""Media files from any channel: type decided by content, size limited, stored under the data dir.

We never trust a declared Content-Type: the file type is decided from its first
bytes against a short allow-list. Channel fetchers (Twilio, Telegram) download;
this module decides what may be kept and where it goes.
"""
from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from channels.messages import AttachmentKind, utcnow

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class MediaError(Exception):
    """Media could not be stored; ``retryable`` says whether a later attempt may work."""

    retryable = False


class MediaTooLarge(MediaError):
    """The file exceeds the configured limit; nothing was kept."""


class MediaTypeNotAllowed(MediaError):
    """The content is not one of the allowed types, whatever its header claimed."""


class MediaDownloadFailed(MediaError):
    """Twilio or the network failed; 5xx and connection errors are retryable, 4xx are not."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class SniffedType:
    mime_type: str
    extension: str


def attachment_kind_for(mime_type: str | None) -> AttachmentKind:
    mime = (mime_type or "").split(";", 1)[0].strip().lower()
    major = mime.split("/", 1)[0]
    if major in ("image", "audio", "video"):
        return AttachmentKind(major)
    if mime in ("text/vcard", "text/x-vcard"):
        return AttachmentKind.CONTACT
    if major == "application" or mime.startswith("text/"):
        return AttachmentKind.DOCUMENT
    return AttachmentKind.OTHER


def sniff_media_type(data: bytes) -> SniffedType | None:
    """Identify an allowed file type by its magic bytes; None when it is anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return SniffedType("image/jpeg", "jpg")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return SniffedType("image/png", "png")
    if data.startswith((b"GIF87a", b"GIF89a")):
        return SniffedType("image/gif", "gif")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return SniffedType("image/webp", "webp")
    if data.startswith(b"%PDF-"):
        return SniffedType("application/pdf", "pdf")
    if data.startswith(b"OggS"):
        return SniffedType("audio/ogg", "ogg")
    if data.startswith(b"#!AMR\n"):
        return SniffedType("audio/amr", "amr")
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"M4A ", b"M4B "):
            return SniffedType("audio/mp4", "m4a")
        if brand.startswith(b"3g"):
            return SniffedType("video/3gpp", "3gp")
        return SniffedType("video/mp4", "mp4")
    if data.startswith(b"PK\x03\x04") and _is_docx(data):
        return SniffedType(DOCX_MIME, "docx")
    return None


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        return False
    return "[Content_Types].xml" in names and "word/document.xml" in names


def store_media(media_dir: Path, data: bytes, extension: str) -> Path:
    """Write atomically to ``media_dir/<yyyy>/<mm>/<uuid>.<ext>`` (blocking: call from a thread)."""
    now = utcnow()
    folder = media_dir / f"{now:%Y}" / f"{now:%m}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.{extension}"
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_bytes(data)
    partial.replace(path)
    return path
