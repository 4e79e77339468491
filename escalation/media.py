"""Staff photos and documents for WhatsApp and web-chat customers, as signed links.

A Telegram file can only be downloaded with the bot token, which must never leave
the server. So a staff attachment reaches a WhatsApp or web-chat customer as a link
to ``/media/staff/<token>`` on our own public URL: the token names the Telegram file
and is signed (HMAC-SHA256 with a key derived from the bot token), so nobody can ask
us for other files, and it expires after :data:`LINK_LIFETIME`. The handler streams
the file from Telegram on each request; nothing is stored.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from channels.messages import utcnow

if TYPE_CHECKING:
    from telegram import Bot

log = logging.getLogger(__name__)

ROUTE = "/media/staff/{token}"
LINK_LIFETIME = timedelta(days=14)
_SIGNATURE_BYTES = 16
# Served inline; anything else is a download, so a staff upload can never run as a page on our origin.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"})


def signing_key(bot_token: str) -> bytes:
    """A key of its own for media links, so the bot token itself is never used as one."""
    return hashlib.sha256(b"supportlah/staff-media-links\0" + bot_token.encode("utf-8")).digest()


@dataclass(frozen=True)
class StaffFile:
    file_id: str
    mime_type: str
    name: str


class MediaLinks:
    def __init__(self, key: bytes, base_url: str | None, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._key = key
        self._base = (base_url or "").rstrip("/")
        self._clock = clock

    def link(self, file: StaffFile) -> str:
        payload = json.dumps([file.file_id, file.mime_type, file.name, int(self._clock().timestamp())],
                             separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        token = f"{_b64(payload)}.{_b64(self._sign(payload))}"
        return f"{self._base}{ROUTE.format(token=token)}"

    def read(self, token: str) -> StaffFile | None:
        """The file a token names, or None if it is forged, malformed or expired."""
        body, _, signature = token.partition(".")
        try:
            payload = _unb64(body)
            given = _unb64(signature)
        except ValueError:
            return None
        if not hmac.compare_digest(given, self._sign(payload)):
            return None
        try:
            file_id, mime, name, issued = json.loads(payload)
        except (ValueError, TypeError):
            return None
        if self._clock().timestamp() - issued > LINK_LIFETIME.total_seconds():
            return None
        return StaffFile(str(file_id), str(mime), str(name))

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


class StaffMediaHandler:
    """``GET /media/staff/<token>``: the signed Telegram file, fetched through the Bot API."""

    def __init__(self, bot: Bot, links: MediaLinks) -> None:
        self._bot = bot
        self._links = links

    def routes(self) -> list[web.RouteDef]:
        return [web.get(ROUTE, self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        from telegram.error import TelegramError  # the SDK loads with the staff group, not with every import

        file = self._links.read(request.match_info["token"])
        if file is None:
            return web.json_response({"error": "unknown or expired link"}, status=404)
        try:
            telegram_file = await self._bot.get_file(file.file_id)
            data = await telegram_file.download_as_bytearray()
        except TelegramError as exc:
            log.warning("staff media unavailable", extra={"error": str(exc)[:200]})
            return web.json_response({"error": "file unavailable"}, status=502)
        safe_name = "".join(ch for ch in file.name if ch.isalnum() or ch in "._- ")[:100] or "file"
        inline = file.mime_type in INLINE_TYPES
        return web.Response(body=bytes(data), content_type=file.mime_type if inline else "application/octet-stream",
                            headers={"Content-Disposition": f'{"inline" if inline else "attachment"}; '
                                                            f'filename="{safe_name}"',
                                     "Cache-Control": "private, max-age=3600"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict: only the canonical encoding is accepted (no stray bits, no other alphabets)."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("bad base64") from exc
    if _b64(data) != text:
        raise ValueError("non-canonical base64")
    return data
