"""Telegram ``Update`` → :class:`InboundMessage`. Pure functions: no I/O, no clock except for callbacks.

Which updates become messages
    * private chats: messages, edited messages and button presses (callback queries);
    * the staff group (``staff_chat_id``): the same, marked ``metadata["staff"] = "true"``
      so the escalation feature can route staff replies back to customers;
    * every other chat (groups the bot was added to, channels) and every other update
      kind: ``None`` — nothing is stored.

Identity: ``provider_message_id`` is ``update:<update_id>``. Telegram never reuses an
update id, so redelivery of one update is a duplicate while an edit (a new update)
is a new message.

Edited messages carry ``{"edited": "true", "original_message_id": <telegram message id>}``.
The rule the pipeline applies: if the original message has not been answered yet, the
edit supersedes it (answer the edited text, not the original); if it was answered, the
edit is a correction and is answered like a new question. The adapter cannot know which
case applies, so it only reports the edit faithfully.

Button presses become text (the callback data) with ``{"kind": "callback",
"callback_query_id": …}``; the button data we create is also decoded so the worker
has one path for typed and pressed commands: ``human`` → command ``human``,
``lang:xx`` → command ``language`` with args ``xx``, ``fb:up:<id>`` / ``fb:down:<id>``
→ ``{"feedback": "up"|"down", "feedback_for": <id>}``.

Commands (``/start``, ``/help``, ``/human``, ``/language``, ``/reset``, ``/my_data``,
``/delete_my_data``, also ``/cmd@OurBot``) keep their text and add ``{"command", "args"}``.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from channels.messages import Attachment, AttachmentKind, Channel, InboundMessage, utcnow
from channels.telegram.keyboard import CALLBACK_HUMAN, FEEDBACK_PREFIX, LANGUAGE_PREFIX
from channels.telegram.texts import COMMANDS

if TYPE_CHECKING:  # annotations only: the ingress and the staff desk use these functions without the SDK loaded
    from telegram import CallbackQuery, Message, Update, User

FILE_URL_SCHEME = "tg-file:"


def provider_id(update_id: int) -> str:
    return f"update:{update_id}"


def normalize_update(update: Update, *, staff_chat_id: int | Collection[int] | None) -> InboundMessage | None:
    """The message this update carries for us, or None when it is not ours to answer.

    ``staff_chat_id`` is the staff group's id, or every id it has had (a group that became a
    supergroup keeps sending from the new one; see :mod:`channels.telegram.staff_chat`).
    """
    if staff_chat_id is None:
        staff_chat_id = frozenset()
    elif isinstance(staff_chat_id, int):
        staff_chat_id = frozenset({staff_chat_id})
    if update.message is not None:
        return _from_message(update.update_id, update.message, staff_chat_id, edited=False)
    if update.edited_message is not None:
        return _from_message(update.update_id, update.edited_message, staff_chat_id, edited=True)
    if update.callback_query is not None:
        return _from_callback(update.update_id, update.callback_query, staff_chat_id)
    return None


def parse_command(text: str) -> tuple[str, str] | None:
    """``("human", "")`` for ``/human``, ``("start", "promo")`` for ``/start@Bot promo``; None otherwise."""
    if not text.startswith("/"):
        return None
    head, _, args = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if name not in COMMANDS:
        return None
    return name, args.strip()


def _chat_metadata(chat_id: int, chat_type: str, staff_chat_id: Collection[int]) -> dict[str, str] | None:
    if chat_id in staff_chat_id:
        return {"staff": "true"}
    if chat_type == "private":
        return {}
    return None


def _sender_name(user: User | None) -> str | None:
    return user.full_name if user is not None else None


def _from_message(
    update_id: int, message: Message, staff_chat_id: Collection[int], *, edited: bool
) -> InboundMessage | None:
    metadata = _chat_metadata(message.chat.id, message.chat.type, staff_chat_id)
    if metadata is None:
        return None
    user = message.from_user
    if user is not None and user.is_bot:
        return None
    text = message.text or message.caption or ""
    attachments, extra = _attachments(message)
    if not text and not attachments:
        return None  # service messages: members joined, pinned, topic created …
    metadata.update(extra)
    metadata["telegram_message_id"] = str(message.message_id)
    if user is not None:
        metadata["user_id"] = str(user.id)
        if user.language_code:
            metadata["language_code"] = user.language_code
    if message.is_topic_message and message.message_thread_id is not None:
        metadata["thread_id"] = str(message.message_thread_id)
    if message.reply_to_message is not None:
        metadata["reply_to_telegram_message_id"] = str(message.reply_to_message.message_id)
    if edited:
        metadata["edited"] = "true"
        metadata["original_message_id"] = str(message.message_id)
    command = parse_command(message.text or "")
    if command is not None:
        metadata["command"], metadata["args"] = command
    # received_at is our clock (ordering, recovery and retention all use it); Telegram's own
    # send time, which can be long before we see the update, is kept for reference.
    metadata["sent_at"] = ((message.edit_date if edited else None) or message.date).isoformat()
    return InboundMessage(
        channel=Channel.TELEGRAM,
        provider_message_id=provider_id(update_id),
        sender_id=str(message.chat.id),
        sender_name=_sender_name(user),
        text=text,
        attachments=attachments,
        received_at=utcnow(),
        metadata=metadata,
    )


def _attachments(message: Message) -> tuple[list[Attachment], dict[str, str]]:
    """What the message carries besides text, plus metadata for kinds without a file."""
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return [_file(AttachmentKind.IMAGE, largest.file_id, "image/jpeg", largest.file_size)], {}
    if message.voice is not None:
        v = message.voice
        return [_file(AttachmentKind.AUDIO, v.file_id, v.mime_type or "audio/ogg", v.file_size)], {"voice": "true"}
    if message.audio is not None:
        a = message.audio
        return [_file(AttachmentKind.AUDIO, a.file_id, a.mime_type, a.file_size, a.file_name)], {}
    if message.video is not None:
        v = message.video
        return [_file(AttachmentKind.VIDEO, v.file_id, v.mime_type, v.file_size, v.file_name)], {}
    if message.video_note is not None:
        v = message.video_note
        return [_file(AttachmentKind.VIDEO, v.file_id, "video/mp4", v.file_size)], {}
    if message.document is not None:
        d = message.document
        return [_file(AttachmentKind.DOCUMENT, d.file_id, d.mime_type, d.file_size, d.file_name)], {}
    if message.location is not None:
        loc = message.location
        extra = {"latitude": repr(loc.latitude), "longitude": repr(loc.longitude)}
        if message.venue is not None:
            extra["venue_title"], extra["venue_address"] = message.venue.title, message.venue.address
        url = f"geo:{loc.latitude!r},{loc.longitude!r}"
        return [Attachment(kind=AttachmentKind.LOCATION, url=url, name=extra.get("venue_title"))], extra
    if message.contact is not None:
        c = message.contact
        name = " ".join(filter(None, [c.first_name, c.last_name]))
        extra = {"contact_phone_number": c.phone_number, "contact_name": name}
        if c.user_id is not None:
            extra["contact_user_id"] = str(c.user_id)
        return [Attachment(kind=AttachmentKind.CONTACT, name=name, url=f"tel:{c.phone_number}")], extra
    other = message.effective_attachment
    if other is not None:
        kind = type(other).__name__.lower()
        return [Attachment(kind=AttachmentKind.OTHER, name=kind)], {"unsupported": kind}
    return [], {}


def _file(
    kind: AttachmentKind, file_id: str, mime_type: str | None, size: int | None, name: str | None = None
) -> Attachment:
    return Attachment(kind=kind, mime_type=mime_type, size=size, url=f"{FILE_URL_SCHEME}{file_id}", name=name)


def _from_callback(update_id: int, query: CallbackQuery, staff_chat_id: Collection[int]) -> InboundMessage | None:
    if query.message is None or query.data is None:
        return None  # inline-mode buttons and games: not ours
    chat = query.message.chat
    metadata = _chat_metadata(chat.id, chat.type, staff_chat_id)
    if metadata is None:
        return None
    metadata.update({"kind": "callback", "callback_query_id": query.id, "user_id": str(query.from_user.id),
                     "telegram_message_id": str(query.message.message_id)})
    if query.from_user.language_code:
        metadata["language_code"] = query.from_user.language_code
    metadata.update(_decode_callback(query.data))
    return InboundMessage(
        channel=Channel.TELEGRAM,
        provider_message_id=provider_id(update_id),
        sender_id=str(chat.id),
        sender_name=_sender_name(query.from_user),
        text=query.data,
        received_at=utcnow(),  # callback queries carry no date
        metadata=metadata,
    )


def _decode_callback(data: str) -> dict[str, str]:
    if data == CALLBACK_HUMAN:
        return {"command": "human", "args": ""}
    if data.startswith(LANGUAGE_PREFIX):
        return {"command": "language", "args": data[len(LANGUAGE_PREFIX):]}
    if data.startswith(FEEDBACK_PREFIX):
        vote, _, message_id = data[len(FEEDBACK_PREFIX):].partition(":")
        if vote in ("up", "down") and message_id:
            return {"feedback": vote, "feedback_for": message_id}
    return {}
