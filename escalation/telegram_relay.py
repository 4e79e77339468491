"""Telegram customers get a staff member's photo or document as the real thing, not a link.

:class:`TelegramRelaySender` sits in front of the channel's ``TelegramSender`` (same
``Channel.TELEGRAM``): a part carrying ``copy_from_chat`` / ``copy_message_id`` metadata
is delivered with ``copyMessage`` from the staff group (media and caption intact, no
"forwarded from" header); every other part goes to the wrapped sender unchanged.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING


from channels.base import OutboundSender, PermanentChannelError, TransientChannelError
from channels.messages import Channel, DeliveryReceipt, OutboundMessage
from channels.telegram.ratelimit import RateLimiter, RateLimitUnavailable

if TYPE_CHECKING:
    from telegram import Bot

log = logging.getLogger(__name__)

COPY_FROM_CHAT = "copy_from_chat"
COPY_MESSAGE_ID = "copy_message_id"


class TelegramRelaySender:
    channel = Channel.TELEGRAM

    def __init__(self, inner: OutboundSender, bot: Bot, limiter: RateLimiter) -> None:
        self._inner = inner
        self._bot = bot
        self._limiter = limiter

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        meta = message.metadata
        if COPY_FROM_CHAT not in meta:
            return await self._inner.send(message)
        try:
            chat_id = int(message.recipient_id)
            from_chat, source_id = int(meta[COPY_FROM_CHAT]), int(meta[COPY_MESSAGE_ID])
        except (KeyError, ValueError) as exc:
            raise PermanentChannelError(f"bad copy part: {exc}", code="bad_copy") from exc
        try:
            await self._limiter.acquire(chat_id)
        except RateLimitUnavailable as exc:
            raise TransientChannelError(str(exc), code="rate_limiter_unavailable") from exc
        from telegram.error import TelegramError  # the SDK loads with the staff group, not with every import

        from channels.telegram.errors import map_telegram_error

        try:
            copied = await self._bot.copy_message(chat_id=chat_id, from_chat_id=from_chat, message_id=source_id)
        except TelegramError as exc:
            raise map_telegram_error(exc) from exc
        log.debug("staff media copied to a customer", extra={"part_id": message.id})
        return DeliveryReceipt(provider_message_id=str(copied.message_id), status="sent")
