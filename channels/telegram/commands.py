"""Replies to the bot's slash commands and command buttons, in the customer's language.

Pure functions: the worker performs the side effect a command asks for (start an
escalation, store a language, open a new conversation, record a PDPA request) and
sends the :class:`CommandReply` this module words for it. ``/delete_my_data`` and
``/my_data`` only promise what is true today: the request is recorded and staff act
on it within 30 days (the PDPA response window).
"""
from __future__ import annotations

from dataclasses import dataclass

from channels.telegram import texts
from channels.telegram.keyboard import KEYBOARD_KEY, Keyboard, encode_keyboard, language_keyboard


@dataclass(frozen=True)
class CommandReply:
    text: str
    language: str  # the language ``text`` is written in
    keyboard: Keyboard = ()
    new_language: str | None = None  # set by /language <code>: the worker stores it for the conversation

    def metadata(self) -> dict[str, str]:
        """OutboundMessage metadata: this exact keyboard (none is "[]", which also suppresses feedback buttons)."""
        return {"language": self.language, KEYBOARD_KEY: encode_keyboard(self.keyboard)}


def command_reply(command: str, *, language: str | None, business_name: str, args: str = "") -> CommandReply:
    """The reply to ``/command args``; ``language`` is the conversation's current language.

    Raises ValueError for a command we do not offer (see :data:`texts.COMMANDS`).
    """
    lang = texts.normalize_language(language)
    if command == "language":
        return _language_reply(lang, args)
    if command not in texts.COMMANDS:
        raise ValueError(f"unknown command: {command!r}")
    return CommandReply(text=texts.text(command, lang, business=business_name), language=lang)


def _language_reply(current: str, requested: str) -> CommandReply:
    if not requested.strip():
        name = texts.LANGUAGE_NAMES[current]
        return CommandReply(texts.text("language_current", current, name=name), current, language_keyboard())
    chosen = texts.parse_language(requested)
    if chosen is None:
        return CommandReply(texts.text("language_unknown", current), current, language_keyboard())
    name = texts.LANGUAGE_NAMES[chosen]
    return CommandReply(texts.text("language_set", chosen, name=name), chosen, new_language=chosen)
