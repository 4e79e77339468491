"""Download customer media from Twilio into local storage, safely.

Runs in the worker, not the webhook. Twilio media URLs need HTTP basic auth and
redirect to a CDN. We never trust the declared Content-Type: the file type is
decided from its first bytes against a short allow-list, and the size limit is
enforced while streaming so an oversized upload never lands on disk.
"""
from __future__ import annotations

import asyncio
import io
import logging
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from channels.messages import Attachment, AttachmentKind, utcnow

__all__ = [
    "MediaDownloadFailed",
    "MediaError",
    "MediaFetcher",
    "MediaTooLarge",
    "MediaTypeNotAllowed",
    "attachment_kind_for",
    "sniff_media_type",
]

logger = logging.getLogger(__name__)

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_CHUNK_BYTES = 64 * 1024


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


class MediaFetcher:
    """Downloads Twilio ``MediaUrlN`` files into ``media_dir/<yyyy>/<mm>/<uuid>.<ext>``.

    ``session_factory`` builds the aiohttp session (first use, inside the running
    loop); tests and deployments pass one to tune timeouts or connectors.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        media_dir: Path,
        max_bytes: int,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
    ) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self._authorization = aiohttp.encode_basic_auth(account_sid, auth_token)
        self._media_dir = media_dir
        self._max_bytes = max_bytes
        self._session_factory = session_factory or _default_session
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, attachment: Attachment) -> Attachment:
        """Download a provider attachment and return the local copy (url = file path, mime from content)."""
        if not attachment.url:
            raise MediaDownloadFailed("attachment has no URL", retryable=False)
        data = await self._download(attachment.url)
        sniffed = await asyncio.to_thread(sniff_media_type, data)
        if sniffed is None:
            logger.warning(
                "twilio.media_type_rejected", extra={"declared": attachment.mime_type, "head": data[:8].hex()}
            )
            raise MediaTypeNotAllowed(f"content is not an allowed media type (declared {attachment.mime_type!r})")
        path = await asyncio.to_thread(self._store, data, sniffed.extension)
        logger.info("twilio.media_stored", extra={"mime_type": sniffed.mime_type, "size": len(data)})
        return Attachment(
            kind=attachment_kind_for(sniffed.mime_type),
            mime_type=sniffed.mime_type,
            size=len(data),
            url=str(path),
            name=attachment.name,
        )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _download(self, url: str) -> bytes:
        if self._session is None:
            self._session = self._session_factory()
        try:
            # aiohttp drops this header when a redirect leaves the origin, so the CDN never sees our token.
            headers = {"Authorization": self._authorization}
            async with self._session.get(url, headers=headers, allow_redirects=True) as response:
                if response.status >= 400:
                    raise MediaDownloadFailed(
                        f"media download answered HTTP {response.status}", retryable=response.status >= 500
                    )
                if response.content_length is not None and response.content_length > self._max_bytes:
                    raise MediaTooLarge(f"media is {response.content_length} bytes; limit is {self._max_bytes}")
                buffer = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
                    buffer.extend(chunk)
                    if len(buffer) > self._max_bytes:
                        raise MediaTooLarge(f"media exceeds the {self._max_bytes}-byte limit")
                return bytes(buffer)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise MediaDownloadFailed(f"media download failed: {type(exc).__name__}", retryable=True) from exc

    def _store(self, data: bytes, extension: str) -> Path:
        now = utcnow()
        folder = self._media_dir / f"{now:%Y}" / f"{now:%m}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}.{extension}"
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(data)
        partial.replace(path)
        return path


def _default_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120, sock_connect=10, sock_read=30))
