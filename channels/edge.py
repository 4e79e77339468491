"""Checks every inbound adapter applies before anything is stored.

The store must never be the first to notice bad input: Postgres refuses a NUL byte or a
lone surrogate in text, a 300-character sender id overflows its column, and a 100,000-
character "message" would be embedded whole. So each channel, after parsing and before
``Ingress.accept``, passes its :class:`InboundMessage` through :func:`checked_inbound`:

* text (the message, names, metadata, attachment names) loses NUL and the other control
  characters except tab and newlines, and any lone surrogate — they carry no meaning, and
  dropping them loses nothing a person wrote;
* text is cut to what the channel itself allows (Twilio 1,600, Telegram 4,096): a longer
  one did not come from the provider;
* identifiers that do not fit the store (empty, too long, control characters) are refused
  with :class:`MalformedInbound`, which the adapter turns into a 4xx with the reason (or,
  for Telegram, a logged 200 so it does not redeliver the update forever).

:func:`load_json` is the JSON reader of the edges: strict UTF-8, bounded nesting, and one
exception type for every way a body can be unreadable.
"""
from __future__ import annotations

import json
import re

from channels.messages import Attachment, InboundMessage

MAX_ID_CHARS = 128  # provider ids, sender ids and reply-to ids (the store's columns)
MAX_NAME_CHARS = 200
MAX_METADATA_CHARS = 1000
MAX_JSON_DEPTH = 32

# C0 controls except \t \n \r, DEL, C1 controls, and lone surrogates (invalid in UTF-8).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_ID_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class MalformedInbound(ValueError):
    """The payload cannot become a message; the text says why, for the sender."""


def clean_text(text: str, limit: int | None = None) -> str:
    """``text`` without control characters and lone surrogates, at most ``limit`` characters."""
    cleaned = _UNPRINTABLE.sub("", text)
    return cleaned[:limit] if limit is not None else cleaned


def checked_id(value: str, field: str) -> str:
    if not value or len(value) > MAX_ID_CHARS or _ID_UNSAFE.search(value):
        raise MalformedInbound(f"{field} must be 1-{MAX_ID_CHARS} printable characters")
    return value


def checked_inbound(message: InboundMessage, *, max_text_chars: int) -> InboundMessage:
    """The message as it may be stored, or :class:`MalformedInbound`."""
    checked_id(message.provider_message_id, "message id")
    checked_id(message.sender_id, "sender id")
    if message.reply_to is not None:
        checked_id(message.reply_to, "reply-to id")
    return message.model_copy(update={
        "text": clean_text(message.text, max_text_chars),
        "sender_name": clean_text(message.sender_name, MAX_NAME_CHARS) if message.sender_name else None,
        "metadata": {clean_text(k, 64): clean_text(v, MAX_METADATA_CHARS) for k, v in message.metadata.items()},
        "attachments": [_checked_attachment(a) for a in message.attachments],
    })


def _checked_attachment(attachment: Attachment) -> Attachment:
    return attachment.model_copy(update={
        "name": clean_text(attachment.name, MAX_NAME_CHARS) if attachment.name else attachment.name,
        "url": clean_text(attachment.url, 2048) if attachment.url else attachment.url,
        "mime_type": clean_text(attachment.mime_type, 128) if attachment.mime_type else attachment.mime_type,
    })


def load_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> object:
    """Parse a JSON body (UTF-8, as RFC 8259 requires) nested at most ``max_depth`` deep."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedInbound(f"body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise MalformedInbound(f"JSON nested deeper than {max_depth} levels") from exc
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        raise MalformedInbound(f"malformed JSON: {exc}"[:200]) from exc
    if _depth_exceeds(value, max_depth):
        raise MalformedInbound(f"JSON nested deeper than {max_depth} levels")
    return value


def _depth_exceeds(value: object, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
