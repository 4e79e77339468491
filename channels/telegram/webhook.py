"""``POST /webhooks/telegram``: verify, normalize, hand to the Ingress, answer 200.

Telegram retries an update until it gets a 2xx, so the handler answers as soon as the
Ingress has committed the message; a redelivered update is a duplicate at the store
(``update:<update_id>`` is unique) and is acknowledged again without a second answer.
Only requests carrying our secret in ``X-Telegram-Bot-Api-Secret-Token`` are read.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, Update
from telegram.error import TelegramError

from channels.base import Ingress
from channels.telegram.errors import map_telegram_error
from channels.telegram.normalize import normalize_update
from channels.telegram.staff_chat import StaffChat

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
WEBHOOK_PORTS = (443, 80, 88, 8443)  # the only ports Telegram delivers webhooks to
_SECRET_FORMAT = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts as secret_token


class TelegramWebhook:
    def __init__(self, ingress: Ingress, bot: Bot, secret: str, staff_chat: StaffChat | int | None) -> None:
        if not secret:
            raise ValueError("a webhook secret is required (SUPPORTLAH_TELEGRAM_WEBHOOK_SECRET)")
        self._ingress = ingress
        self._bot = bot
        self._secret = secret.encode("utf-8")
        self._staff_chat = StaffChat(staff_chat) if isinstance(staff_chat, int) else staff_chat

    def routes(self) -> list[web.RouteDef]:
        return [web.post(WEBHOOK_PATH, self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8")
        if not hmac.compare_digest(given, self._secret):
            log.warning("telegram webhook call with a wrong or missing secret", extra={"remote": request.remote})
            return web.json_response({"ok": False, "reason": "forbidden"}, status=403)
        try:
            data = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return web.json_response({"ok": False, "reason": f"malformed JSON: {exc}"}, status=400)
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.json_response({"ok": False, "reason": "not a Telegram update (no integer update_id)"},
                                     status=400)
        try:
            update = Update.de_json(data, self._bot)
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"ok": False, "reason": f"unreadable update: {exc!r}"}, status=400)
        if self._staff_chat is not None and await self._staff_chat.observe(update):
            return web.json_response({"ok": True, "ignored": True})  # the group moved: followed, nothing to answer
        message = normalize_update(update, staff_chat_id=self._staff_chat.ids if self._staff_chat else None)
        if message is None:
            log.debug("telegram update ignored", extra={"update_id": update.update_id})
            return web.json_response({"ok": True, "ignored": True})
        result = await self._ingress.accept(message)
        log.debug("telegram update accepted",  # the ingress logs the acceptance at info
                 extra={"update_id": update.update_id, "message_id": result.message_id, "duplicate": result.duplicate})
        return web.json_response({"ok": True, "duplicate": result.duplicate})


async def set_webhook(bot: Bot, url: str, secret: str, *, drop_pending_updates: bool = False) -> None:
    """Point Telegram at ``url`` (normally ``{public_url}/webhooks/telegram``) with our secret."""
    if not url.startswith("https://"):
        raise ValueError("Telegram only delivers webhooks to https:// URLs")
    port = urlsplit(url).port or 443
    if port not in WEBHOOK_PORTS:
        raise ValueError(f"Telegram only delivers webhooks to ports 443, 80, 88 or 8443, not {port}: "
                         "put a reverse proxy on one of them in front of SUPPORTLAH_PUBLIC_URL")
    if not _SECRET_FORMAT.fullmatch(secret):
        raise ValueError("the webhook secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    try:
        await bot.set_webhook(url=url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES),
                              drop_pending_updates=drop_pending_updates)
    except TelegramError as exc:
        raise map_telegram_error(exc) from exc
    log.info("telegram webhook set", extra={"url": url})


async def delete_webhook(bot: Bot) -> None:
    """Stop webhook delivery (required before long polling: getUpdates is refused while a webhook is set)."""
    try:
        await bot.delete_webhook(drop_pending_updates=False)
    except TelegramError as exc:
        raise map_telegram_error(exc) from exc
