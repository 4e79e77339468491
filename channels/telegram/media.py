"""Download files customers send the bot (photos, documents, voice notes) into the data dir."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from telegram import Bot
from telegram.error import NetworkError, TelegramError, TimedOut

from channels.media import (
    MediaDownloadFailed,
    MediaTooLarge,
    MediaTypeNotAllowed,
    attachment_kind_for,
    sniff_media_type,
    store_media,
)
from channels.messages import Attachment
from channels.telegram.normalize import FILE_URL_SCHEME

log = logging.getLogger(__name__)


class TelegramMediaFetcher:
    """Resolves ``tg-file:<file_id>`` attachments with getFile and stores the bytes if allowed."""

    def __init__(self, bot: Bot, media_dir: Path, max_bytes: int) -> None:
        self._bot = bot
        self._media_dir = media_dir
        self._max_bytes = max_bytes

    async def fetch(self, attachment: Attachment) -> Attachment:
        url = attachment.url or ""
        if not url.startswith(FILE_URL_SCHEME):
            raise MediaDownloadFailed(f"not a Telegram file reference: {url[:40]!r}", retryable=False)
        if attachment.size is not None and attachment.size > self._max_bytes:
            raise MediaTooLarge(f"file is {attachment.size} bytes; limit is {self._max_bytes}")
        try:
            file = await self._bot.get_file(url[len(FILE_URL_SCHEME):])
            if file.file_size is not None and file.file_size > self._max_bytes:
                raise MediaTooLarge(f"file is {file.file_size} bytes; limit is {self._max_bytes}")
            data = bytes(await file.download_as_bytearray())
        except (TimedOut, NetworkError) as exc:
            raise MediaDownloadFailed(f"Telegram file download failed: {type(exc).__name__}", retryable=True) from exc
        except TelegramError as exc:
            raise MediaDownloadFailed(f"Telegram refused the file: {exc}", retryable=False) from exc
        if len(data) > self._max_bytes:
            raise MediaTooLarge(f"file exceeds the {self._max_bytes}-byte limit")
        sniffed = await asyncio.to_thread(sniff_media_type, data)
        if sniffed is None:
            raise MediaTypeNotAllowed(f"content is not an allowed media type (declared {attachment.mime_type!r})")
        path = await asyncio.to_thread(store_media, self._media_dir, data, sniffed.extension)
        log.info("telegram media stored", extra={"mime_type": sniffed.mime_type, "size": len(data)})
        return Attachment(kind=attachment_kind_for(sniffed.mime_type), mime_type=sniffed.mime_type, size=len(data),
                          url=str(path), name=attachment.name)
