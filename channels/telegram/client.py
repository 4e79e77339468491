"""Building the PTB ``Bot`` client and the limiter settings from :class:`Settings`.

``SUPPORTLAH_TELEGRAM_API_BASE_URL`` points the real SDK at a local Bot API server
(or a test fake); unset, it talks to api.telegram.org.
"""
from __future__ import annotations

from pathlib import Path

from telegram import Bot
from telegram.request import HTTPXRequest

from channels.telegram.ratelimit import Bucket, TelegramLimits
from config.settings import Settings

TELEGRAM_API = "https://api.telegram.org"


def build_bot(token: str, *, api_base_url: str | None = None, timeout: float = 15.0) -> Bot:
    """A Bot client (not yet initialized: ``await bot.initialize()`` or ``async with bot``)."""
    base = (api_base_url or TELEGRAM_API).rstrip("/")
    return Bot(
        token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        request=HTTPXRequest(read_timeout=timeout, write_timeout=timeout, connect_timeout=5.0, pool_timeout=5.0),
        # getUpdates adds its long-poll timeout to this read timeout itself.
        get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=timeout, connect_timeout=5.0),
    )


def bot_from_settings(settings: Settings) -> Bot:
    if settings.telegram_bot_token is None:
        raise ValueError("SUPPORTLAH_TELEGRAM_BOT_TOKEN is not set")
    return build_bot(
        settings.telegram_bot_token.get_secret_value(),
        api_base_url=settings.telegram_api_base_url,
        timeout=settings.telegram_request_timeout_seconds,
    )


# Telegram counts sends as they arrive: two spaced exactly by its limit here can arrive closer
# after one slow hop and draw a 429. A tenth of headroom keeps arrivals inside the limit.
_HEADROOM = 1.1


def limits_from_settings(settings: Settings) -> TelegramLimits:
    """The configured limits (Telegram's published figures by default), each with the headroom."""
    return TelegramLimits(
        private_chat=Bucket(rate=settings.telegram_private_chat_per_second / _HEADROOM),
        group_chat=Bucket(rate=settings.telegram_group_chat_per_minute / 60 / _HEADROOM),
        overall=Bucket(rate=settings.telegram_overall_per_second / _HEADROOM),
    )


def offset_file(settings: Settings) -> Path:
    return settings.telegram_offset_file or settings.data_dir / "telegram_offset"
