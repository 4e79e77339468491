"""Everything the composition root needs for the Telegram channel, built from settings in one place."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from telegram import Bot
from telegram.error import InvalidToken, TelegramError

from channels.base import Ingress
from channels.telegram.client import bot_from_settings, limits_from_settings, offset_file
from channels.telegram.outbound import TelegramSender
from channels.telegram.polling import FileOffsetStore, TelegramPoller
from channels.telegram.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from channels.telegram.staff_chat import ChatMoves, StaffChat
from channels.telegram.webhook import WEBHOOK_PATH, TelegramWebhook, set_webhook
from config.settings import Settings

log = logging.getLogger(__name__)

MOVED_NOTICE = "ℹ️ This group became a supergroup (Telegram gave it a new id); the assistant keeps posting here."


class TelegramConfigError(ValueError):
    """Telegram is half-configured or its token is refused; the message names the setting."""


@dataclass
class TelegramChannel:
    bot: Bot
    sender: TelegramSender
    mode: str  # "webhook" | "polling"
    webhook_secret: str | None
    staff_chat: StaffChat | None  # SUPPORTLAH_STAFF_CHAT_ID, followed when the group becomes a supergroup
    offset_path: Path
    poll_timeout: int

    @property
    def staff_chat_id(self) -> int | None:
        return self.staff_chat.current if self.staff_chat is not None else None

    async def start(self) -> None:
        """Open the HTTP pool and check the token with getMe. Telegram being unreachable is not fatal
        (sends retry later); a refused token is. The staff group's recorded moves are loaded."""
        if self.staff_chat is not None:
            await self.staff_chat.load()
            self.staff_chat.on_move(self._announce_move)
        try:
            await self.bot.initialize()
        except InvalidToken as exc:
            # PTB's own message repeats the token; chain to the API's answer instead of to it.
            raise TelegramConfigError("Telegram rejected SUPPORTLAH_TELEGRAM_BOT_TOKEN") from exc.__cause__
        except TelegramError as exc:
            log.warning("Telegram unreachable at startup; continuing", extra={"error": type(exc).__name__})

    async def _announce_move(self, _old_id: int, new_id: int) -> None:
        """One line in the group, so staff know the bot followed (only the process that recorded the move posts it)."""
        try:
            await self.bot.send_message(chat_id=new_id, text=MOVED_NOTICE)
        except TelegramError as exc:  # a notice only: the move itself is recorded and followed
            log.warning("could not announce the staff group's move", extra={"error": str(exc)[:120]})

    async def reachable(self) -> bool:
        """Readiness probe: the Bot API answers getMe for our token."""
        await self.bot.get_me()
        return True

    def webhook(self, ingress: Ingress) -> TelegramWebhook:
        if not self.webhook_secret:
            raise TelegramConfigError("SUPPORTLAH_TELEGRAM_WEBHOOK_SECRET is required in webhook mode")
        return TelegramWebhook(ingress, self.bot, self.webhook_secret, self.staff_chat)

    def poller(self, ingress: Ingress) -> TelegramPoller:
        return TelegramPoller(self.bot, ingress, FileOffsetStore(self.offset_path), self.staff_chat,
                              poll_timeout=self.poll_timeout)

    async def register_webhook(self, public_url: str, *, drop_pending_updates: bool = False) -> str:
        """``supportlah telegram set-webhook``: point Telegram at us and publish the command menu."""
        if not self.webhook_secret:
            raise TelegramConfigError("SUPPORTLAH_TELEGRAM_WEBHOOK_SECRET is required to set a webhook")
        url = public_url.rstrip("/") + WEBHOOK_PATH
        await set_webhook(self.bot, url, self.webhook_secret, drop_pending_updates=drop_pending_updates)
        await self.sender.set_commands()
        return url

    async def close(self) -> None:
        await self.sender.close()


def telegram_channel_from_settings(settings: Settings, redis: Redis | None,
                                   chat_moves: ChatMoves | None = None) -> TelegramChannel | None:
    """The Telegram channel when a bot token is configured, else None (the channel is simply off).

    With Redis the send limits are shared by every process; without it they hold per process.
    ``chat_moves`` persists the staff group's moves to a supergroup (the message store).
    """
    if settings.telegram_bot_token is None or not settings.telegram_bot_token.get_secret_value():
        return None
    secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else None
    if settings.telegram_mode == "webhook" and not secret:
        raise TelegramConfigError(
            "SUPPORTLAH_TELEGRAM_WEBHOOK_SECRET is required when SUPPORTLAH_TELEGRAM_MODE=webhook")
    limits = limits_from_settings(settings)
    limiter: RateLimiter = (RedisRateLimiter(redis, settings.redis_prefix, limits) if redis is not None
                            else LocalRateLimiter(limits))
    bot = bot_from_settings(settings)
    return TelegramChannel(
        bot=bot,
        sender=TelegramSender(bot, limiter),
        mode=settings.telegram_mode,
        webhook_secret=secret,
        staff_chat=StaffChat(settings.staff_chat_id, chat_moves) if settings.staff_chat_id is not None else None,
        offset_path=offset_file(settings),
        poll_timeout=settings.telegram_poll_timeout_seconds,
    )
