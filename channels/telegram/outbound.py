"""Sending to Telegram: one reply part per call, rate-limited, HTML-escaped, errors mapped.

All text goes out in HTML parse mode after :func:`html.escape`, so whatever the agent
wrote (``*_[]<>&``, code, maths) arrives exactly as written instead of being read as
markup or rejected by Telegram's entity parser.

Part metadata the sender understands (all optional, all strings):
    ``language``   en/zh/ms/ta: the language of button labels;
    ``last_part``  "false" on all but the last part of an answer (default "true");
    ``escalate``   "true" when the answer hands over to staff (no feedback buttons then);
    ``keyboard``   an explicit keyboard from :mod:`channels.telegram.keyboard` ("[]" for none);
    ``thread_id``  forum topic in the staff group to post into.
Customer answers (a private chat, ``in_reply_to`` set, last part, not escalated) get
👍 / 👎 and "Talk to a person" buttons unless ``keyboard`` says otherwise.
"""
from __future__ import annotations

import html
import logging

from telegram import Bot, BotCommand
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError

from channels.base import PermanentChannelError, TransientChannelError
from channels.messages import Channel, DeliveryReceipt, OutboundMessage
from channels.splitting import clip_text, split_text, text_length
from channels.telegram import texts
from channels.telegram.errors import map_telegram_error
from channels.telegram.keyboard import KEYBOARD_KEY, Keyboard, decode_keyboard, feedback_keyboard, to_markup
from channels.telegram.ratelimit import RateLimiter, RateLimitUnavailable

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4096  # Bot API limit, counted in UTF-16 code units after entity parsing
MAX_CAPTION_CHARS = 1024  # captions, counted the same way
MAX_CALLBACK_ANSWER_CHARS = 200  # answerCallbackQuery text
_ANSWERED_ALREADY = ("query is too old", "query id is invalid")


def split_for_telegram(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Parts of at most ``limit`` UTF-16 units, cut at paragraph, sentence (Latin and CJK) or word boundaries."""
    return split_text(text, limit)


def _chat_id(recipient_id: str) -> int:
    try:
        return int(recipient_id)
    except ValueError as exc:
        raise PermanentChannelError(f"not a Telegram chat id: {recipient_id!r}", code="bad_recipient") from exc


class TelegramSender:
    """:class:`~channels.base.OutboundSender` for Telegram. Owns ``bot``: :meth:`close` shuts it down."""

    channel = Channel.TELEGRAM

    def __init__(self, bot: Bot, rate_limiter: RateLimiter) -> None:
        self._bot = bot
        self._limiter = rate_limiter

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        chat_id = _chat_id(message.recipient_id)
        if not message.text.strip():
            raise PermanentChannelError("empty message text", code="empty_message")
        if text_length(message.text) > MAX_MESSAGE_CHARS:
            raise PermanentChannelError(
                f"part exceeds {MAX_MESSAGE_CHARS} UTF-16 units; split it with split_for_telegram",
                code="message_too_long",
            )
        markup = to_markup(self._keyboard_for(message, chat_id))
        thread_id = message.metadata.get("thread_id")
        await self._acquire(chat_id)
        try:
            sent = await self._bot.send_message(
                chat_id=chat_id,
                text=html.escape(message.text, quote=False),
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                message_thread_id=int(thread_id) if thread_id else None,
            )
        except TelegramError as exc:
            raise map_telegram_error(exc) from exc
        log.debug("telegram part sent", extra={"part_id": message.id, "telegram_message_id": sent.message_id})
        return DeliveryReceipt(provider_message_id=str(sent.message_id), status="sent")

    def _keyboard_for(self, message: OutboundMessage, chat_id: int) -> Keyboard:
        meta = message.metadata
        if KEYBOARD_KEY in meta:
            try:
                return decode_keyboard(meta[KEYBOARD_KEY])
            except ValueError as exc:
                raise PermanentChannelError(str(exc), code="bad_keyboard") from exc
        is_customer_answer = (
            chat_id > 0
            and message.in_reply_to is not None
            and meta.get("last_part", "true") == "true"
            and meta.get("escalate", "false") != "true"
        )
        return feedback_keyboard(message.in_reply_to, meta.get("language")) if is_customer_answer else ()

    async def _acquire(self, chat_id: int) -> None:
        try:
            await self._limiter.acquire(chat_id)
        except RateLimitUnavailable as exc:
            raise TransientChannelError(str(exc), code="rate_limiter_unavailable") from exc

    async def typing(self, chat_id: int | str) -> None:
        """Show "typing…" (Telegram clears it after ~5 s or when our message arrives)."""
        try:
            await self._bot.send_chat_action(chat_id=_chat_id(str(chat_id)), action=ChatAction.TYPING)
        except TelegramError as exc:
            raise map_telegram_error(exc) from exc

    async def answer_callback(self, callback_query_id: str, text: str | None = None) -> None:
        """Stop the button's loading spinner; Telegram expects this within a few seconds of the press.

        A query can be answered once (a retried job answers again: Telegram says the query is
        invalid, which means it is done) and with at most 200 characters of text.
        """
        if text and len(text) > MAX_CALLBACK_ANSWER_CHARS:
            text = clip_text(text, MAX_CALLBACK_ANSWER_CHARS)
        try:
            await self._bot.answer_callback_query(callback_query_id=callback_query_id, text=text)
        except TelegramError as exc:
            if any(hint in str(exc).lower() for hint in _ANSWERED_ALREADY):
                log.info("callback query answered already or expired", extra={"error": str(exc)[:120]})
                return
            raise map_telegram_error(exc) from exc

    async def set_commands(self) -> None:
        """Register the command menu: English as the default, plus zh/ms/ta for users with those app languages."""
        for language in (None, *[code for code in texts.LANGUAGE_CODES if code != texts.DEFAULT_LANGUAGE]):
            commands = [BotCommand(name, desc) for name, desc in texts.command_descriptions(language or "en")]
            try:
                await self._bot.set_my_commands(commands, language_code=language)
            except TelegramError as exc:
                raise map_telegram_error(exc) from exc

    async def close(self) -> None:
        await self._bot.shutdown()
