"""``POST /webhooks/telegram``: verify, normalize, hand to the Ingress, answer 200.

Telegram retries an update until it gets a 2xx, so the handler answers as soon as the
Ingress has committed the message; a redelivered update is a duplicate at the store
(``update:<update_id>`` is unique) and is acknowledged again without a second answer.
Only requests carrying our secret in ``X-Telegram-Bot-Api-Secret-Token`` are read.

An update we cannot use (unreadable JSON, fields of the wrong type, ids that are not
numbers, text that cannot be stored) is answered 200 ``{"ok": true, "ignored": ...}``
with the reason logged and nothing stored: a 4xx would only make Telegram send the same
update again, forever, and it would hold up every later update of that chat.
"""
from __future__ import annotations

import hmac
import logging
import re
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, Update
from telegram.error import TelegramError

from channels.base import Ingress
from channels.edge import MalformedInbound, checked_inbound, load_json
from channels.telegram.errors import map_telegram_error
from channels.telegram.normalize import normalize_update
from channels.telegram.staff_chat import StaffChat

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
WEBHOOK_PORTS = (443, 80, 88, 8443)  # the only ports Telegram delivers webhooks to
_SECRET_FORMAT = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts as secret_token
MAX_TEXT_CHARS = 4096  # the longest message text Telegram delivers
MAX_UPDATE_BYTES = 1024 * 1024


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
        raw = await request.read()
        try:
            if len(raw) > MAX_UPDATE_BYTES:
                raise MalformedInbound(f"update larger than {MAX_UPDATE_BYTES} bytes")
            data = load_json(raw)
            update_problem(data)
            update = _parse(data, self._bot)
        except MalformedInbound as exc:
            log.warning("unusable telegram update ignored", extra={"reason": str(exc)[:200]})
            return web.json_response({"ok": True, "ignored": True, "reason": str(exc)[:200]})
        if self._staff_chat is not None and await self._staff_chat.observe(update):
            return web.json_response({"ok": True, "ignored": True})  # the group moved: followed, nothing to answer
        try:
            message = normalize_update(update, staff_chat_id=self._staff_chat.ids if self._staff_chat else None)
            if message is not None:
                message = checked_inbound(message, max_text_chars=MAX_TEXT_CHARS)
        except MalformedInbound as exc:
            log.warning("unusable telegram update ignored", extra={"reason": str(exc)[:200]})
            return web.json_response({"ok": True, "ignored": True, "reason": str(exc)[:200]})
        if message is None:
            log.debug("telegram update ignored", extra={"update_id": update.update_id})
            return web.json_response({"ok": True, "ignored": True})
        result = await self._ingress.accept(message)
        log.debug("telegram update accepted",  # the ingress logs the acceptance at info
                 extra={"update_id": update.update_id, "message_id": result.message_id, "duplicate": result.duplicate})
        return web.json_response({"ok": True, "duplicate": result.duplicate})


def _parse(data: dict, bot: Bot) -> Update:
    """PTB's parser over an update whose shape :func:`update_problem` checked. It can still fail on
    a field we do not look at; whatever it raises, the update is unusable, never a server error."""
    try:
        return Update.de_json(data, bot)
    except Exception as exc:  # noqa: BLE001 — vendor parser on untrusted input; mapped, not swallowed
        raise MalformedInbound(f"unreadable update: {type(exc).__name__}: {exc}"[:200]) from exc


def update_problem(data: object) -> None:
    """Raise :class:`MalformedInbound` unless the fields we read have the Bot API's types."""
    if not isinstance(data, dict):
        raise MalformedInbound("an update must be a JSON object")
    _need_int(data, "update_id", "update")
    for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
        if kind in data:
            _check_message(data[kind], kind)
    if "callback_query" in data:
        query = data["callback_query"]
        if not isinstance(query, dict):
            raise MalformedInbound("callback_query must be an object")
        if not isinstance(query.get("id"), str):
            raise MalformedInbound("callback_query.id must be a string")
        _check_user(query.get("from"), "callback_query.from", required=True)
        if "data" in query and not isinstance(query["data"], str):
            raise MalformedInbound("callback_query.data must be a string")
        if "message" in query:
            _check_message(query["message"], "callback_query.message")


def _check_message(message: object, where: str) -> None:
    if not isinstance(message, dict):
        raise MalformedInbound(f"{where} must be an object")
    _need_int(message, "message_id", where)
    _need_int(message, "date", where)
    chat = message.get("chat")
    if not isinstance(chat, dict):
        raise MalformedInbound(f"{where}.chat is missing")
    _need_int(chat, "id", f"{where}.chat")
    if not isinstance(chat.get("type"), str):
        raise MalformedInbound(f"{where}.chat.type must be a string")
    _check_user(message.get("from"), f"{where}.from", required=False)
    for field in ("text", "caption"):
        if field in message and not isinstance(message[field], str):
            raise MalformedInbound(f"{where}.{field} must be a string")
    for field in ("entities", "caption_entities", "photo"):
        if field in message and not isinstance(message[field], list):
            raise MalformedInbound(f"{where}.{field} must be a list")
    for field in ("message_thread_id", "edit_date"):
        if field in message:
            _need_int(message, field, where)
    if "reply_to_message" in message:
        reply = message["reply_to_message"]
        if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
            raise MalformedInbound(f"{where}.reply_to_message must be a message")


def _check_user(user: object, where: str, *, required: bool) -> None:
    if user is None and not required:
        return
    if not isinstance(user, dict):
        raise MalformedInbound(f"{where} must be an object")
    _need_int(user, "id", where)
    if not isinstance(user.get("is_bot"), bool) or not isinstance(user.get("first_name"), str):
        raise MalformedInbound(f"{where} needs is_bot (boolean) and first_name (string)")


def _need_int(obj: dict, field: str, where: str) -> None:
    value = obj.get(field)
    if not isinstance(value, int) or isinstance(value, bool):  # JSON true is not an id
        raise MalformedInbound(f"{where}.{field} must be an integer")


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
