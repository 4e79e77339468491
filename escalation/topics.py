"""One forum topic per customer conversation in the staff group, kept alive.

Staff delete and close topics; groups get converted to and from forums. So a topic
is created on first use, renamed for each new ticket ("#123 · WhatsApp · Mei Ling"),
reopened if it was closed, and recreated when Telegram says the thread is gone. When
the group cannot have topics (not a forum, or the bot may not manage topics) we fall
back to reply-threading: ``Place.thread_id`` is None and posts reply to the ticket card.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import Bot
from telegram.error import TelegramError

from channels.base import ChannelError
from channels.telegram.errors import TopicNotFound, map_telegram_error
from channels.telegram.staff_chat import StaffChat
from escalation.card import topic_name
from escalation.models import Ticket
from escalation.tickets import TicketRepository

log = logging.getLogger(__name__)

_NO_TOPICS_HINTS = ("not a forum", "not enough rights", "chat_not_modified", "method is available only")


@dataclass(frozen=True)
class Place:
    """Where a post for a ticket goes: a topic, or (no topics) a reply to the ticket's card."""

    thread_id: int | None
    reply_to: int | None


def is_topic_gone(exc: ChannelError) -> bool:
    return isinstance(exc, TopicNotFound)


def is_topic_closed(exc: ChannelError) -> bool:
    return "topic_closed" in str(exc).lower()


class TopicKeeper:
    def __init__(self, bot: Bot, chat: StaffChat | int, tickets: TicketRepository, *, use_topics: bool) -> None:
        self._bot = bot
        self.staff_chat = StaffChat(chat) if isinstance(chat, int) else chat
        self._tickets = tickets
        self._use_topics = use_topics

    @property
    def chat_id(self) -> int:
        """The group's id now (it changes when the group becomes a supergroup)."""
        return self.staff_chat.current

    @property
    def _chat_id(self) -> int:
        return self.staff_chat.current

    async def place(self, ticket: Ticket, *, new_card: bool = False) -> Place:
        """The topic for this ticket's conversation, created or refreshed as needed."""
        reply_to = None if new_card else ticket.card_message_id
        if not self._use_topics:
            return Place(None, reply_to)
        topic = await self._tickets.topic_for(ticket.conversation_id)
        if topic is None or (topic.thread_id is None and new_card):
            thread_id = await self._create(ticket, replacing=topic.thread_id if topic else None, first=topic is None)
            return Place(thread_id, None if thread_id else reply_to)
        if topic.thread_id is None:
            return Place(None, reply_to)
        if new_card and topic.name != topic_name(ticket):
            await self._rename(ticket, topic.thread_id)
        if topic.closed:
            await self.reopen(ticket, topic.thread_id)
        return Place(topic.thread_id, None)

    async def recover(self, ticket: Ticket, thread_id: int, exc: ChannelError) -> Place:
        """A post into ``thread_id`` failed because the topic is gone or closed: make it usable again."""
        if is_topic_closed(exc) and await self.reopen(ticket, thread_id):
            return Place(thread_id, None)
        log.info("staff topic gone; creating a new one", extra={"ticket": ticket.number})
        new_thread = await self._create(ticket, replacing=thread_id, first=False)
        if new_thread is not None:
            await self._tickets.record(ticket.id, key=f"topic:{ticket.id}:{new_thread}", kind="topic_recreated",
                                       actor="system", detail=f"topic {thread_id} was gone; now {new_thread}")
        return Place(new_thread, None if new_thread else ticket.card_message_id)

    async def reopen(self, ticket: Ticket, thread_id: int) -> bool:
        try:
            await self._bot.reopen_forum_topic(chat_id=self._chat_id, message_thread_id=thread_id)
        except TelegramError as exc:
            if "topic_not_modified" not in str(exc).lower():  # already open is fine
                log.warning("could not reopen a staff topic", extra={"ticket": ticket.number, "error": str(exc)})
                return False
        await self._tickets.update_topic(ticket.conversation_id, closed=False)
        return True

    async def close(self, ticket: Ticket) -> None:
        topic = await self._tickets.topic_for(ticket.conversation_id)
        if topic is None or topic.thread_id is None or topic.closed:
            return
        try:
            await self._bot.close_forum_topic(chat_id=self._chat_id, message_thread_id=topic.thread_id)
        except TelegramError as exc:
            mapped = map_telegram_error(exc)
            if not isinstance(mapped, TopicNotFound) and "topic_not_modified" not in str(exc).lower():
                raise mapped from exc
        await self._tickets.update_topic(ticket.conversation_id, closed=True)

    async def delete(self, conversation_id: str) -> bool:
        """PDPA erasure: remove the topic and everything in it."""
        topic = await self._tickets.topic_for(conversation_id)
        if topic is None or topic.thread_id is None:
            return False
        try:
            await self._bot.delete_forum_topic(chat_id=self._chat_id, message_thread_id=topic.thread_id)
        except TelegramError as exc:
            mapped = map_telegram_error(exc)
            if not isinstance(mapped, TopicNotFound):
                raise mapped from exc
        return True

    async def _create(self, ticket: Ticket, *, replacing: int | None, first: bool) -> int | None:
        name = topic_name(ticket)
        try:
            created = await self._bot.create_forum_topic(chat_id=self._chat_id, name=name)
        except TelegramError as exc:
            mapped = map_telegram_error(exc)
            if not any(hint in str(exc).lower() for hint in _NO_TOPICS_HINTS):
                raise mapped from exc
            log.warning("the staff group cannot have topics; replies thread under the card instead",
                        extra={"error": str(exc)})
            if first:
                await self._tickets.save_topic(ticket.conversation_id, self._chat_id, None, name, replacing=None)
            else:
                await self._tickets.update_topic(ticket.conversation_id, thread_id=None, name=name)
            return None
        saved = await self._tickets.save_topic(ticket.conversation_id, self._chat_id, created.message_thread_id,
                                               name, replacing=replacing)
        if saved.thread_id != created.message_thread_id:  # another worker made one first: use theirs
            await self._discard(created.message_thread_id)
        return saved.thread_id

    async def _rename(self, ticket: Ticket, thread_id: int) -> None:
        name = topic_name(ticket)
        try:
            await self._bot.edit_forum_topic(chat_id=self._chat_id, message_thread_id=thread_id, name=name)
        except TelegramError as exc:
            if isinstance(map_telegram_error(exc), TopicNotFound):
                return  # the post that follows recreates it
            if "topic_not_modified" not in str(exc).lower():  # the name was already right: record it
                log.warning("could not rename a staff topic", extra={"ticket": ticket.number, "error": str(exc)})
                return
        await self._tickets.update_topic(ticket.conversation_id, name=name)

    async def _discard(self, thread_id: int) -> None:
        try:
            await self._bot.close_forum_topic(chat_id=self._chat_id, message_thread_id=thread_id)
        except TelegramError:
            log.warning("could not close a duplicate staff topic", exc_info=True)
