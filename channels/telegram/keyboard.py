"""Inline keyboards, and how they travel through ``OutboundMessage.metadata``.

Metadata values are strings (they are stored with the reply part), so a keyboard
is carried as JSON under :data:`KEYBOARD_KEY`: a list of rows, each a list of
``[label, callback_data]`` pairs. ``"[]"`` means "no keyboard at all"; an absent
key lets the sender choose its default (feedback buttons under an answer).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from channels.telegram import texts

if TYPE_CHECKING:  # keyboards are built (and carried as JSON) by processes that never load the SDK
    from telegram import InlineKeyboardMarkup

log = logging.getLogger(__name__)

KEYBOARD_KEY = "keyboard"
MAX_CALLBACK_DATA_BYTES = 64  # Bot API limit for callback_data

CALLBACK_HUMAN = "human"
FEEDBACK_PREFIX = "fb:"
LANGUAGE_PREFIX = "lang:"


@dataclass(frozen=True)
class Button:
    label: str
    data: str

    def __post_init__(self) -> None:
        size = len(self.data.encode("utf-8"))
        if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
            raise ValueError(f"callback data must be 1-{MAX_CALLBACK_DATA_BYTES} bytes, got {size}")


Keyboard = tuple[tuple[Button, ...], ...]


def encode_keyboard(rows: Keyboard) -> str:
    return json.dumps([[[b.label, b.data] for b in row] for row in rows], ensure_ascii=False)


def decode_keyboard(raw: str) -> Keyboard:
    """Inverse of :func:`encode_keyboard`; raises ValueError on anything else."""
    try:
        rows = json.loads(raw)
        return tuple(tuple(Button(str(label), str(data)) for label, data in row) for row in rows)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"malformed keyboard metadata: {exc}") from exc


def to_markup(rows: Keyboard) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in rows])


def feedback_keyboard(in_reply_to: str | None, language: str | None) -> Keyboard:
    """👍 / 👎 for the answered message (when its id fits in callback data) and "Talk to a person"."""
    rows: list[tuple[Button, ...]] = []
    if in_reply_to:
        up, down = f"{FEEDBACK_PREFIX}up:{in_reply_to}", f"{FEEDBACK_PREFIX}down:{in_reply_to}"
        if len(down.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
            rows.append((Button("👍", up), Button("👎", down)))
        else:
            log.warning("message id too long for feedback buttons; sending without them",
                        extra={"in_reply_to_len": len(in_reply_to)})
    rows.append((Button(texts.text("button_human", language), CALLBACK_HUMAN),))
    return tuple(rows)


def language_keyboard() -> Keyboard:
    """One button per supported language, each labelled in its own language, two per row."""
    buttons = [Button(texts.LANGUAGE_NAMES[code], f"{LANGUAGE_PREFIX}{code}") for code in texts.LANGUAGE_CODES]
    return tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))
