"""Download customer media from Twilio into local storage, safely.

Runs in the worker, not the webhook. Twilio media URLs need HTTP basic auth and
redirect to a CDN. The type check and storage are shared (``channels.media``); the
size limit is enforced while streaming so an oversized upload never lands on disk.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import aiohttp

from channels.media import (
    MediaDownloadFailed,
    MediaTooLarge,
    MediaTypeNotAllowed,
    attachment_kind_for,
    sniff_media_type,
    store_media,
)
from channels.messages import Attachment

__all__ = ["MediaFetcher"]

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024


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
        path = await asyncio.to_thread(store_media, self._media_dir, data, sniffed.extension)
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


def _default_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120, sock_connect=10, sock_read=30))
