"""Ticket repository: tickets, their history, and where they live in the staff group.

Every write is idempotent under job retries: a ticket is found again by the message
that opened it, and events carry a unique key derived from the message that caused
them, so recording the same thing twice is a no-op.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.messages import new_id, utcnow
from escalation.models import StaffPost, StaffTopic, Ticket, TicketCounter, TicketEvent, TicketStatus
from escalation.triggers import CustomerEvent
from config.sql import dialect_insert
from memory.models import Conversation, ConversationMode, InboundMessageRow

log = logging.getLogger(__name__)

_OPEN_ATTEMPTS = 8
_TIMELINE_LIMIT = 30


@dataclass
class NewTicket:
    conversation_id: str
    contact_id: str
    channel: str
    customer_id: str
    customer_name: str | None
    language: str
    reason: str
    priority: str
    opened_by_message_id: str
    summary: str = ""
    draft_text: str = ""
    draft_sources: list[dict] = field(default_factory=list)
    card_facts: dict = field(default_factory=dict)
    sla_due_at: datetime | None = None
    detail: str = ""
    human_mode: bool = True  # False without a staff group: recorded for follow-up, the AI keeps answering


class TicketRepository:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    # ------------------------------------------------------------------ reading
    async def get(self, ticket_id: str) -> Ticket | None:
        async with self._sessions() as session:
            return await session.get(Ticket, ticket_id)

    async def by_number(self, number: int) -> Ticket | None:
        return await self._one(select(Ticket).where(Ticket.number == number))

    async def by_opening_message(self, message_id: str) -> Ticket | None:
        return await self._one(select(Ticket).where(Ticket.opened_by_message_id == message_id))

    async def active_for(self, conversation_id: str) -> Ticket | None:
        return await self._one(
            select(Ticket)
            .where(Ticket.conversation_id == conversation_id, Ticket.status.in_(TicketStatus.ACTIVE))
            .order_by(Ticket.created_at.desc())
            .limit(1)
        )

    async def latest_for(self, conversation_id: str) -> Ticket | None:
        return await self._one(
            select(Ticket).where(Ticket.conversation_id == conversation_id).order_by(Ticket.created_at.desc()).limit(1)
        )

    async def had_ticket_since(self, contact_id: str, since: datetime, *, excluding: str | None = None) -> bool:
        query = select(Ticket.id).where(Ticket.contact_id == contact_id, Ticket.created_at >= since)
        if excluding is not None:
            query = query.where(Ticket.id != excluding)
        async with self._sessions() as session:
            return await session.scalar(query.limit(1)) is not None

    async def list(self, statuses: list[str] | None = None, limit: int = 50) -> list[Ticket]:
        query = select(Ticket).order_by(Ticket.number.desc()).limit(limit)
        if statuses:
            query = query.where(Ticket.status.in_(statuses))
        async with self._sessions() as session:
            return list(await session.scalars(query))

    async def has_event(self, key: str) -> bool:
        async with self._sessions() as session:
            return await session.scalar(select(TicketEvent.id).where(TicketEvent.key == key[:160])) is not None

    async def events(self, ticket_id: str) -> list[TicketEvent]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.at, TicketEvent.id)
            )
            return list(rows)

    async def _one(self, query) -> Ticket | None:  # noqa: ANN001
        async with self._sessions() as session:
            return await session.scalar(query)

    # ------------------------------------------------------------------ writing
    async def open(self, new: NewTicket) -> Ticket:
        """Create the ticket with the next number; the same opening message always gets the same ticket."""
        for _ in range(_OPEN_ATTEMPTS):
            existing = await self.by_opening_message(new.opened_by_message_id)
            if existing is not None:
                return existing
            async with self._sessions() as session:
                number = await _next_number(session)
                now = utcnow()
                ticket = Ticket(
                    id=new_id(), number=number, conversation_id=new.conversation_id, contact_id=new.contact_id,
                    channel=new.channel, customer_id=new.customer_id, customer_name=new.customer_name,
                    language=new.language, status=TicketStatus.OPEN, priority=new.priority, reason=new.reason,
                    summary=new.summary, draft_text=new.draft_text, draft_sources=list(new.draft_sources),
                    card_facts=dict(new.card_facts),
                    opened_by_message_id=new.opened_by_message_id, sla_due_at=new.sla_due_at,
                    created_at=now, updated_at=now,
                )
                session.add(ticket)
                session.add(self._event(ticket.id, f"{new.opened_by_message_id}:opened", "opened", "bot", None,
                                        new.detail or new.reason))
                try:
                    mode = ConversationMode.HUMAN if new.human_mode else ConversationMode.BOT
                    await self._set_mode(session, new.conversation_id, mode)
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    continue  # a concurrent attempt opened this very ticket: look again
                log.info("ticket opened", extra={"ticket": number, "reason": new.reason, "priority": new.priority})
                return ticket
        raise RuntimeError("could not open the ticket: every attempt conflicted")

    async def reopen(self, ticket: Ticket, new: NewTicket, *, key: str) -> Ticket:
        """A new escalation soon after the last ticket was resolved continues that ticket."""
        values = dict(status=TicketStatus.OPEN, reason=new.reason, priority=new.priority, summary=new.summary,
                      draft_text=new.draft_text, draft_sources=list(new.draft_sources), card_facts=dict(new.card_facts),
                      language=new.language, customer_name=new.customer_name or ticket.customer_name,
                      sla_due_at=new.sla_due_at, sla_reminded_at=None, resolved_at=None, closed_at=None,
                      card_message_id=None)
        return await self.change(ticket.id, key=key, kind="reopened", actor="bot", detail=new.detail or new.reason,
                                 **values)

    async def ticket_for_event(self, key: str) -> Ticket | None:
        return await self._one(select(Ticket).join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
                               .where(TicketEvent.key == key[:160]))

    async def change(self, ticket_id: str, *, key: str, kind: str, actor: str, actor_name: str | None = None,
                     detail: str = "", **values: object) -> Ticket:
        """Apply ``values`` and record the event once. A retry (same key) changes nothing again."""
        async with self._sessions() as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                raise LookupError(f"no ticket {ticket_id}")
            already = await session.scalar(select(TicketEvent.id).where(TicketEvent.key == key))
            if already is not None:
                return ticket
            for name, value in values.items():
                setattr(ticket, name, value)
            ticket.updated_at = utcnow()
            session.add(self._event(ticket_id, key, kind, actor, actor_name, detail))
            try:
                if "status" in values:
                    mode = ConversationMode.HUMAN if values["status"] in TicketStatus.ACTIVE else ConversationMode.BOT
                    await self._set_mode(session, ticket.conversation_id, mode)
                await session.commit()
            except IntegrityError:  # the same event recorded concurrently
                await session.rollback()
                return await session.get(Ticket, ticket_id, populate_existing=True)
            return ticket

    async def record(self, ticket_id: str, *, key: str, kind: str, actor: str, actor_name: str | None = None,
                     detail: str = "") -> bool:
        """Add an event without changing the ticket; False if this key was recorded before."""
        async with self._sessions() as session:
            session.add(self._event(ticket_id, key, kind, actor, actor_name, detail))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
        return True

    async def set_card(self, ticket_id: str, message_id: int) -> None:
        await self.update(ticket_id, card_message_id=message_id)

    async def update(self, ticket_id: str, **values: object) -> None:
        """Change fields that need no history entry (card message id, the latest AI draft, card facts)."""
        async with self._sessions() as session:
            await session.execute(update(Ticket).where(Ticket.id == ticket_id).values(**values))
            await session.commit()

    @staticmethod
    def _event(ticket_id: str, key: str, kind: str, actor: str, actor_name: str | None, detail: str) -> TicketEvent:
        return TicketEvent(id=new_id(), ticket_id=ticket_id, key=key[:160], kind=kind, actor=actor,
                           actor_name=actor_name, detail=detail, at=utcnow())

    @staticmethod
    async def _set_mode(session: AsyncSession, conversation_id: str, mode: ConversationMode) -> None:
        """Mirror human mode on the conversation row, for anyone reading conversations (admin, exports)."""
        await session.execute(update(Conversation).where(Conversation.id == conversation_id).values(mode=mode))

    # ------------------------------------------------------------------ staff group
    async def topic_for(self, conversation_id: str) -> StaffTopic | None:
        async with self._sessions() as session:
            return await session.get(StaffTopic, conversation_id)

    async def conversation_for_thread(self, chat_id: int, thread_id: int) -> str | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(StaffTopic.conversation_id)
                .where(StaffTopic.chat_id == chat_id, StaffTopic.thread_id == thread_id)
            )

    async def save_topic(self, conversation_id: str, chat_id: int, thread_id: int | None, name: str, *,
                         replacing: int | None) -> StaffTopic:
        """Record the conversation's topic. Compare-and-set: if someone else already replaced
        ``replacing`` (or created the first one), theirs wins and is returned."""
        async with self._sessions() as session:
            current = await session.get(StaffTopic, conversation_id)
            if current is None:
                session.add(StaffTopic(conversation_id=conversation_id, chat_id=chat_id, thread_id=thread_id,
                                       name=name, closed=False, updated_at=utcnow()))
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    return await session.get(StaffTopic, conversation_id, populate_existing=True)
                return await session.get(StaffTopic, conversation_id)
            if current.thread_id != replacing:
                return current
            current.thread_id, current.name, current.closed, current.updated_at = thread_id, name, False, utcnow()
            await session.commit()
            return current

    async def update_topic(self, conversation_id: str, **values: object) -> None:
        async with self._sessions() as session:
            await session.execute(update(StaffTopic).where(StaffTopic.conversation_id == conversation_id)
                                  .values(updated_at=utcnow(), **values))
            await session.commit()

    async def remember_post(self, chat_id: int, message_id: int, ticket_id: str, kind: str) -> None:
        async with self._sessions() as session:
            if await session.get(StaffPost, (chat_id, message_id)) is None:
                session.add(StaffPost(chat_id=chat_id, message_id=message_id, ticket_id=ticket_id, kind=kind,
                                      created_at=utcnow()))
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """The staff group became a supergroup: its topics and posts now live under the new id."""
        async with self._sessions() as session:
            await session.execute(update(StaffTopic).where(StaffTopic.chat_id == old_chat_id)
                                  .values(chat_id=new_chat_id))
            await session.execute(update(StaffPost).where(StaffPost.chat_id == old_chat_id)
                                  .values(chat_id=new_chat_id))
            await session.commit()

    async def ticket_for_post(self, chat_id: int, message_id: int) -> Ticket | None:
        return await self._one(
            select(Ticket).join(StaffPost, StaffPost.ticket_id == Ticket.id)
            .where(StaffPost.chat_id == chat_id, StaffPost.message_id == message_id)
        )

    # ------------------------------------------------------------------ SLA
    async def overdue(self, now: datetime, repeat_after: timedelta) -> list[Ticket]:
        """Tickets waiting for staff past their SLA and not reminded within ``repeat_after``."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Ticket).where(
                    Ticket.status.in_(TicketStatus.WAITING_FOR_STAFF),
                    Ticket.sla_due_at.is_not(None),
                    Ticket.sla_due_at <= now,
                    or_(Ticket.sla_reminded_at.is_(None), Ticket.sla_reminded_at <= now - repeat_after),
                ).order_by(Ticket.sla_due_at)
            )
            return list(rows)

    async def claim_reminder(self, ticket: Ticket, now: datetime) -> bool:
        """Compare-and-set on ``sla_reminded_at``: exactly one process sends each reminder."""
        condition = (Ticket.sla_reminded_at.is_(None) if ticket.sla_reminded_at is None
                     else Ticket.sla_reminded_at == ticket.sla_reminded_at)
        async with self._sessions() as session:
            result = await session.execute(
                update(Ticket).where(Ticket.id == ticket.id, condition).values(sla_reminded_at=now)
            )
            await session.commit()
            return result.rowcount == 1

    # ------------------------------------------------------------------ customer timeline
    async def customer_events(self, conversation_id: str, until: datetime) -> list[CustomerEvent]:
        """The customer's questions and ratings up to ``until`` since staff last dealt with the conversation."""
        async with self._sessions() as session:
            latest = await session.scalar(
                select(Ticket).where(Ticket.conversation_id == conversation_id).order_by(Ticket.created_at.desc())
                .limit(1)
            )
            reset = await session.scalar(select(Conversation.context_reset_at)
                                         .where(Conversation.id == conversation_id))
            cutoffs = [t for t in (reset, latest and latest.created_at, latest and latest.resolved_at,
                                   latest and latest.closed_at) if t]
            query = select(InboundMessageRow.text, InboundMessageRow.meta, InboundMessageRow.received_at).where(
                InboundMessageRow.conversation_id == conversation_id, InboundMessageRow.received_at <= until)
            if cutoffs:
                query = query.where(InboundMessageRow.received_at > max(cutoffs))
            rows = list(await session.execute(
                query.order_by(InboundMessageRow.received_at.desc()).limit(_TIMELINE_LIMIT)))
        # Telegram dates have one-second resolution: its own message ids order messages within a second.
        rows.sort(key=lambda row: (row[2], _telegram_order(row[1] or {})))
        events: list[CustomerEvent] = []
        for text, meta, _received_at in rows:
            meta = meta or {}
            if meta.get("feedback") in ("up", "down"):
                events.append(CustomerEvent(meta["feedback"], rated_message_id=meta.get("feedback_for", "")))
            elif "command" not in meta and meta.get("kind") != "callback" and text.strip():
                events.append(CustomerEvent("question", text=text))
        return events


def _telegram_order(meta: dict) -> int:
    value = meta.get("telegram_message_id", "") if meta.get("kind") != "callback" else ""
    return int(value) if value.isdigit() else 0


async def _next_number(session: AsyncSession) -> int:
    """Take the next ticket number inside the caller's transaction (its row lock is held until
    commit). The counter starts from the highest existing number the first time it is used."""
    for _ in range(2):
        number = await session.scalar(
            update(TicketCounter).where(TicketCounter.name == "ticket")
            .values(value=TicketCounter.value + 1).returning(TicketCounter.value)
        )
        if number is not None:
            return number
        highest = select(func.coalesce(func.max(Ticket.number), 0)).scalar_subquery()
        await session.execute(
            dialect_insert(session)(TicketCounter).values(name="ticket", value=highest)
            .on_conflict_do_nothing(index_elements=["name"])
        )
    raise RuntimeError("the ticket counter row could not be created")
