"""python-telegram-bot exceptions → our :class:`ChannelError` family, decided once, here."""
from __future__ import annotations

import warnings
from datetime import timedelta

import httpx

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from channels.base import (
    AmbiguousSendError,
    ChannelError,
    PermanentChannelError,
    RecipientUnreachable,
    TransientChannelError,
)

# httpx failures that happen before a request is written: nothing reached Telegram.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class ChatMigratedError(PermanentChannelError):
    """The group became a supergroup: ``new_chat_id`` is where to post now (see :mod:`channels.telegram.staff_chat`)."""

    def __init__(self, message: str, *, new_chat_id: int) -> None:
        super().__init__(message, code="chat_migrated")
        self.new_chat_id = new_chat_id


class TopicNotFound(PermanentChannelError):
    """The staff group's forum topic was deleted; the escalation feature opens a new one."""


def retry_after_seconds(exc: RetryAfter) -> float:
    """PTB 22 returns an int (deprecated) unless ``PTB_TIMEDELTA`` opts into timedelta; accept both."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def map_telegram_error(exc: TelegramError) -> ChannelError:
    """The ChannelError to raise (``from exc``) for a failed Bot API call."""
    description = str(exc)
    lowered = description.lower()
    if isinstance(exc, RetryAfter):
        return TransientChannelError(description, code="rate_limited", retry_after=retry_after_seconds(exc))
    if isinstance(exc, Forbidden):
        return RecipientUnreachable(description, code="forbidden")
    if isinstance(exc, ChatMigrated):
        return ChatMigratedError(description, new_chat_id=int(exc.new_chat_id))
    if isinstance(exc, BadRequest):  # BadRequest subclasses NetworkError: test it first
        if "message thread not found" in lowered:
            return TopicNotFound(description, code="topic_not_found")
        if "chat not found" in lowered:
            return RecipientUnreachable(description, code="chat_not_found")
        return PermanentChannelError(description, code="bad_request")
    if isinstance(exc, NetworkError):  # includes TimedOut, dropped connections and 5xx
        cause = exc.__cause__
        if isinstance(cause, httpx.HTTPError) and not isinstance(cause, _NOT_SENT):
            # The request went out and no answer came back: Telegram may have delivered it.
            return AmbiguousSendError(description or type(cause).__name__, code="no_response")
        return TransientChannelError(description, code="network")
    if isinstance(exc, InvalidToken):
        return PermanentChannelError(description, code="invalid_token")
    if isinstance(exc, Conflict):
        return PermanentChannelError(description, code="conflict")
    return PermanentChannelError(description, code="telegram_error")
