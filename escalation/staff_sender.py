"""The :class:`~channels.base.OutboundSender` for ``Channel.STAFF``: everything we post in the staff group.

Staff-group posts are ordinary reply parts, so the processor's exactly-once machinery
covers them. Their metadata (all strings) says what to do:

    ``ticket_id``     the ticket the post belongs to (required);
    ``staff_kind``    ``card`` (the hand-off card, with buttons), ``card_update`` (edit the
                      card after a status change), ``notice`` / ``forward`` / ``draft`` (a
                      text post), ``close_topic`` (a notice, then the topic is closed),
                      ``copy`` (copy a Telegram customer's message, media included),
                      ``upload`` (upload a customer's file we fetched), ``confirm`` (report
                      whether earlier customer-bound parts were delivered);
    ``keyboard``      inline keyboard JSON (:mod:`channels.telegram.keyboard`);
    ``confirms``      for ``confirm``: comma-separated part ids to check;
    ``react_to``      for ``confirm``: the staff message to react to on success (``reaction``, default 👌);
    ``ok_text``       for ``confirm`` without ``react_to``: what to post on success;
    ``copy_from_chat`` / ``copy_message_id``   for ``copy``;
    ``media_url`` / ``media_kind`` / ``media_name`` / ``media_mime``   for ``upload``;
    ``mention_id`` / ``mention_name``   a text post that pings that staff member.

Posts land in the conversation's forum topic (see :mod:`escalation.topics`), which is
recreated once if Telegram says it is gone; without topics they reply to the card. A
group that became a supergroup is followed to its new id (:mod:`channels.telegram.staff_chat`)
and the post is made there. Text is cut to Telegram's limits (4,096 UTF-16 units, captions
1,024) as plain text, before it is escaped for HTML.
"""
from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from telegram import Bot, InputFile, ReactionTypeEmoji, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import TelegramError

from channels.base import ChannelError, PermanentChannelError, TransientChannelError
from channels.messages import Attachment, AttachmentKind, Channel, DeliveryReceipt, OutboundMessage
from channels.splitting import clip_text, split_text, text_length
from channels.telegram.errors import ChatMigratedError, map_telegram_error
from channels.telegram.keyboard import KEYBOARD_KEY, decode_keyboard, to_markup
from channels.telegram.outbound import MAX_CAPTION_CHARS, MAX_MESSAGE_CHARS
from channels.telegram.ratelimit import RateLimiter, RateLimitUnavailable
from escalation.models import Ticket
from escalation.tickets import TicketRepository
from escalation.topics import Place, TopicKeeper, is_topic_closed, is_topic_gone
from memory.models import PartState

log = logging.getLogger(__name__)

DELIVERED_REACTION = "👌"
_DONE = (PartState.SENT, PartState.DELIVERED, PartState.READ)
_FRIENDLY_ERRORS = {
    "63016": "WhatsApp's 24-hour window is closed and no approved template is configured "
             "(SUPPORTLAH_TWILIO_TEMPLATE_CONTENT_SID)",
    "forbidden": "the customer has blocked the bot",
    "chat_not_found": "the customer's chat no longer exists",
    "21610": "the customer unsubscribed (STOP)",
}


class PartLookup(Protocol):
    async def get_part(self, part_id: str): ...  # noqa: ANN201  (memory.models.OutboundPart | None)


class MediaSource(Protocol):
    """Fetches a customer's attachment to a local file (Twilio media needs our credentials)."""

    async def fetch(self, attachment: Attachment) -> Attachment: ...


Send = Callable[[Place], Awaitable[int]]


class StaffSender:
    channel = Channel.STAFF

    def __init__(self, bot: Bot, limiter: RateLimiter, topics: TopicKeeper, tickets: TicketRepository,
                 parts: PartLookup, *, media: MediaSource | None = None) -> None:
        self._bot = bot
        self._limiter = limiter
        self._topics = topics
        self._tickets = tickets
        self._parts = parts
        self._media = media

    @property
    def chat_id(self) -> int:
        return self._topics.chat_id

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Post ``message``; if the group became a supergroup meanwhile, follow it and post there."""
        try:
            return await self._send(message)
        except ChatMigratedError as exc:
            await self._topics.staff_chat.follow(self.chat_id, exc.new_chat_id)
            log.info("staff group moved; posting to its new id", extra={"part_id": message.id})
            return await self._send(message)  # once: a second move in one send is a real failure

    async def _send(self, message: OutboundMessage) -> DeliveryReceipt:
        meta = message.metadata
        ticket = await self._tickets.get(meta.get("ticket_id", ""))
        if ticket is None:
            raise PermanentChannelError(f"staff post for unknown ticket {meta.get('ticket_id')!r}", code="no_ticket")
        kind = meta.get("staff_kind", "notice")
        if kind == "card_update":
            return await self._edit_card(ticket, message)
        if kind == "confirm":
            return await self._confirm(ticket, message)
        if kind == "copy":
            operation = self._copy(message)
        elif kind == "upload":
            operation = await self._upload(message)
        else:
            operation = self._text(message)
        message_id = await self._post(ticket, operation, new_card=kind == "card")
        await self._tickets.remember_post(self.chat_id, message_id, ticket.id, kind)
        if kind == "card":
            await self._tickets.set_card(ticket.id, message_id)
        if kind == "close_topic":
            try:
                await self._guarded(self._topics.close(ticket))
            except ChannelError as exc:  # the notice is out; an open topic is only untidy
                log.warning("could not close a staff topic", extra={"ticket": ticket.number, "error": str(exc)[:200]})
        return DeliveryReceipt(provider_message_id=str(message_id), status="sent")

    # ------------------------------------------------------------------ posting
    async def _post(self, ticket: Ticket, operation: Send, *, new_card: bool) -> int:
        place = await self._guarded(self._topics.place(ticket, new_card=new_card))
        try:
            return await operation(place)
        except ChannelError as exc:
            if place.thread_id is None or not (is_topic_gone(exc) or is_topic_closed(exc)):
                raise
            place = await self._guarded(self._topics.recover(ticket, place.thread_id, exc))
        return await operation(place)  # once: a second failure is a real failure

    def _text(self, message: OutboundMessage) -> Send:
        """A text post; its limit (4,096 UTF-16 units of visible text) holds with the mention appended,
        and the text is cut before it is escaped, so a cut never lands inside ``&amp;`` or a tag."""
        markup = self._markup(message)
        mention = ""
        if message.metadata.get("mention_id", "").isdigit():  # ping the ticket's owner (SLA reminders)
            name = clip_text(message.metadata.get("mention_name") or "owner", 64)
            mention = f' <a href="tg://user?id={message.metadata["mention_id"]}">{html.escape(name, quote=False)}</a>'
            visible_mention = 1 + text_length(name)
        else:
            visible_mention = 0
        body = html.escape(clip_text(message.text, MAX_MESSAGE_CHARS - visible_mention), quote=False) + mention

        async def send(place: Place) -> int:
            await self._acquire()
            sent = await self._call(self._bot.send_message(
                chat_id=self.chat_id, text=body, parse_mode=ParseMode.HTML,
                reply_markup=markup, message_thread_id=place.thread_id, reply_parameters=_reply(place)))
            return sent.message_id

        return send

    def _copy(self, message: OutboundMessage) -> Send:
        meta = message.metadata

        async def send(place: Place) -> int:
            await self._acquire()
            copied = await self._call(self._bot.copy_message(
                chat_id=self.chat_id, from_chat_id=int(meta["copy_from_chat"]),
                message_id=int(meta["copy_message_id"]), message_thread_id=place.thread_id,
                reply_parameters=_reply(place)))
            return copied.message_id

        return send

    async def _upload(self, message: OutboundMessage) -> Send:
        meta = message.metadata
        attachment = Attachment(kind=AttachmentKind(meta.get("media_kind", "document")), url=meta.get("media_url"),
                                name=meta.get("media_name") or None, mime_type=meta.get("media_mime") or None)
        try:
            local = attachment if _is_local(attachment.url) else await self._fetch(attachment)
            data = await asyncio.to_thread(Path(local.url or "").read_bytes)
        except (OSError, ChannelError, ValueError) as exc:
            log.warning("customer attachment could not be fetched for staff", extra={"error": str(exc)[:200]})
            note = f"{message.text}\n📎 (the customer's attachment could not be fetched: {str(exc)[:120]})".strip()
            return self._text(message.model_copy(update={"text": note}))
        # A caption holds 1,024 UTF-16 units of visible text: the first part goes under the file, the
        # rest follows as text. Each is cut as plain text and escaped afterwards.
        pieces = split_text(message.text, MAX_CAPTION_CHARS) if message.text.strip() else []
        caption = html.escape(pieces[0], quote=False) if pieces else None
        rest = " ".join(pieces[1:])
        filename = local.name or Path(local.url or "file").name
        photo = local.kind == AttachmentKind.IMAGE

        async def send(place: Place) -> int:
            await self._acquire()
            common = dict(chat_id=self.chat_id, caption=caption, parse_mode=ParseMode.HTML,
                          message_thread_id=place.thread_id, reply_parameters=_reply(place))
            try:
                if photo:
                    sent = await self._call(self._bot.send_photo(photo=InputFile(data, filename=filename), **common))
                else:
                    sent = await self._call(self._bot.send_document(document=InputFile(data, filename=filename),
                                                                    **common))
            except PermanentChannelError as exc:
                if not (photo and _not_a_photo(exc)):
                    raise
                # Telegram could not read it as a photo (HEIC, a corrupt or huge image): send the file as is
                log.info("photo refused by Telegram; sending it as a document", extra={"error": str(exc)[:120]})
                await self._acquire()
                sent = await self._call(self._bot.send_document(document=InputFile(data, filename=filename),
                                                                **common))
            if rest:
                await self._acquire()
                await self._call(self._bot.send_message(
                    chat_id=self.chat_id, text=html.escape(rest, quote=False), parse_mode=ParseMode.HTML,
                    message_thread_id=place.thread_id, reply_parameters=ReplyParameters(
                        message_id=sent.message_id, allow_sending_without_reply=True)))
            return sent.message_id

        return send

    async def _fetch(self, attachment: Attachment) -> Attachment:
        if self._media is None:
            raise ValueError("no media fetcher configured")
        try:
            return await self._media.fetch(attachment)
        except Exception as exc:  # the fetcher's own error family; the post goes out as text instead
            raise ValueError(f"{type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------------ card and confirmations
    async def _edit_card(self, ticket: Ticket, message: OutboundMessage) -> DeliveryReceipt:
        if ticket.card_message_id is None:
            log.info("no card to update; posting the update instead", extra={"ticket": ticket.number})
            message_id = await self._post(ticket, self._text(message), new_card=False)
            return DeliveryReceipt(provider_message_id=str(message_id), status="sent")
        try:
            await self._bot.edit_message_text(
                chat_id=self.chat_id, message_id=ticket.card_message_id,
                text=html.escape(clip_text(message.text, MAX_MESSAGE_CHARS), quote=False),
                parse_mode=ParseMode.HTML, reply_markup=self._markup(message))
        except TelegramError as exc:
            lowered = str(exc).lower()
            if "message is not modified" in lowered or "message to edit not found" in lowered:
                log.info("card left as it was", extra={"ticket": ticket.number, "why": lowered[:80]})
            else:
                raise map_telegram_error(exc) from exc
        return DeliveryReceipt(provider_message_id=f"card:{ticket.card_message_id}", status="sent")

    async def _confirm(self, ticket: Ticket, message: OutboundMessage) -> DeliveryReceipt:
        """After the customer-bound parts were attempted: 👌 on the staff message, or say what failed."""
        meta = message.metadata
        react_to = int(meta["react_to"]) if meta.get("react_to") else None
        parts = [await self._parts.get_part(pid) for pid in filter(None, meta.get("confirms", "").split(","))]
        failed = [p for p in parts if p is None or p.state not in _DONE]
        if failed:
            reason = "; ".join(sorted({delivery_problem(p) for p in failed}))
            await self._tickets.record(ticket.id, key=f"{message.idempotency_key}:failed", kind="delivery_failed",
                                       actor="system", detail=reason)
            text = f"⚠️ Not delivered to the customer: {reason}"
            receipt = await self._post(ticket, self._text_replying(text, react_to), new_card=False)
            return DeliveryReceipt(provider_message_id=str(receipt), status="sent")
        if react_to is not None and await self._react(react_to, meta.get("reaction") or DELIVERED_REACTION):
            return DeliveryReceipt(provider_message_id=f"reaction:{react_to}", status="sent")
        text = meta.get("ok_text") or "✓ Delivered to the customer"
        message_id = await self._post(ticket, self._text_replying(text, react_to), new_card=False)
        return DeliveryReceipt(provider_message_id=str(message_id), status="sent")

    def _text_replying(self, text: str, reply_to: int | None) -> Send:
        async def send(place: Place) -> int:
            target = Place(place.thread_id, reply_to or place.reply_to)
            await self._acquire()
            sent = await self._call(self._bot.send_message(
                chat_id=self.chat_id, text=html.escape(text, quote=False), parse_mode=ParseMode.HTML,
                message_thread_id=target.thread_id, reply_parameters=_reply(target)))
            return sent.message_id

        return send

    async def _react(self, message_id: int, emoji: str) -> bool:
        try:
            await self._bot.set_message_reaction(chat_id=self.chat_id, message_id=message_id,
                                                 reaction=[ReactionTypeEmoji(emoji)])
        except TelegramError as exc:  # reactions disabled in the group: confirm with a short reply instead
            log.info("could not react; confirming with a message", extra={"error": str(exc)[:120]})
            return False
        return True

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _markup(message: OutboundMessage):  # noqa: ANN205
        raw = message.metadata.get(KEYBOARD_KEY)
        if not raw:
            return None
        try:
            return to_markup(decode_keyboard(raw))
        except ValueError as exc:
            raise PermanentChannelError(str(exc), code="bad_keyboard") from exc

    async def _acquire(self) -> None:
        try:
            await self._limiter.acquire(self.chat_id)
        except RateLimitUnavailable as exc:
            raise TransientChannelError(str(exc), code="rate_limiter_unavailable") from exc

    @staticmethod
    async def _call(request: Awaitable):  # noqa: ANN205
        try:
            return await request
        except TelegramError as exc:
            raise map_telegram_error(exc) from exc

    @staticmethod
    async def _guarded(request: Awaitable[Place]) -> Place:
        try:
            return await request
        except TelegramError as exc:
            raise map_telegram_error(exc) from exc


def _reply(place: Place) -> ReplyParameters | None:
    if place.reply_to is None:
        return None
    return ReplyParameters(message_id=place.reply_to, allow_sending_without_reply=True)


def _not_a_photo(exc: ChannelError) -> bool:
    lowered = str(exc).lower()
    return any(hint in lowered for hint in ("image_process_failed", "photo_invalid", "photo_ext_invalid",
                                            "wrong type of the web page content", "failed to get http url content"))


def _is_local(url: str | None) -> bool:
    return bool(url) and "://" not in url and Path(url).is_file()


def delivery_problem(part) -> str:  # noqa: ANN001  (OutboundPart | None)
    """Why a part did not reach the customer, in words staff understand (also shown in the console)."""
    if part is None:
        return "the message was not recorded"
    if part.state in (PartState.PENDING, PartState.SENDING):
        return "still being sent"
    if part.error_code in _FRIENDLY_ERRORS:
        return _FRIENDLY_ERRORS[part.error_code]
    return (part.last_error or part.error_code or "unknown error")[:200]
