"""What the inbox and a conversation show, read straight from the pipeline's tables.

Nothing here writes: staff actions go through :mod:`supportlah.console.replies`. The
transcript joins each customer message with the recorded decision (confidence, sources,
hand-off reason) and each reply part with its delivery state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.messages import Channel
from escalation.models import Ticket, TicketEvent, TicketStatus
from escalation.staff_sender import delivery_problem
from memory.models import Contact, Conversation, InboundMessageRow, OutboundPart, PartState, ReplyRow

CUSTOMER_CHANNELS = (Channel.WEB.value, Channel.WHATSAPP.value, Channel.TELEGRAM.value)
PREVIEW_CHARS = 120


@dataclass(frozen=True)
class InboxFilter:
    waiting: bool = False  # tickets waiting for staff (open or claimed)
    mine: bool = False
    channel: str = ""
    language: str = ""
    query: str = ""


@dataclass(frozen=True)
class InboxRow:
    conversation_id: str
    customer: str
    channel: str
    language: str
    preview: str
    preview_at: datetime
    mode: str  # bot | human
    ticket_number: int | None
    status: str
    priority: str
    assignee: str | None
    reply_due: datetime | None


@dataclass(frozen=True)
class Entry:
    """One line of the transcript."""

    at: datetime
    role: str  # user | assistant | staff | system
    text: str
    confidence: float | None = None
    sources: list[dict] = field(default_factory=list)
    reason: str | None = None  # hand-off reason of an escalating decision
    state: str | None = None  # delivery state of a reply part
    error: str | None = None


@dataclass(frozen=True)
class ConversationView:
    conversation_id: str
    customer: str
    channel: str
    language: str
    mode: str
    ticket: Ticket | None
    entries: list[Entry]
    notes: list[TicketEvent]


class InboxReader:
    """``staff_chat_id``: the Telegram staff group, whose own messages are stored like a chat's but are
    no customer conversation."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, staff_chat_id: int | None = None) -> None:
        self._sessions = sessions
        self._staff_chat = str(staff_chat_id) if staff_chat_id is not None else None

    async def rows(self, wanted: InboxFilter, *, actor_id: str, limit: int = 100) -> list[InboxRow]:
        latest_ticket = (select(Ticket.conversation_id, func.max(Ticket.number).label("number"))
                         .group_by(Ticket.conversation_id).subquery())
        query = (
            select(Conversation, Contact, Ticket)
            .join(Contact, Contact.id == Conversation.contact_id)
            .outerjoin(latest_ticket, latest_ticket.c.conversation_id == Conversation.id)
            .outerjoin(Ticket, Ticket.number == latest_ticket.c.number)
            .where(Conversation.channel.in_(CUSTOMER_CHANNELS))
            .order_by(Conversation.last_message_at.desc())
            .limit(limit)
        )
        if self._staff_chat is not None:
            query = query.where(~and_(Contact.channel == Channel.TELEGRAM.value,
                                      Contact.channel_user_id == self._staff_chat))
        if wanted.waiting:
            query = query.where(Ticket.status.in_(TicketStatus.WAITING_FOR_STAFF))
        if wanted.mine:
            query = query.where(Ticket.assignee_id == actor_id, Ticket.status.in_(TicketStatus.ACTIVE))
        if wanted.channel:
            query = query.where(Conversation.channel == wanted.channel)
        if wanted.language:
            query = query.where(Conversation.language == wanted.language)
        if wanted.query:
            pattern = f"%{_like_escaped(wanted.query)}%"
            said = select(InboundMessageRow.conversation_id).where(InboundMessageRow.text.ilike(pattern, escape="\\"))
            query = query.where(or_(Contact.display_name.ilike(pattern, escape="\\"),
                                    Contact.channel_user_id.ilike(pattern, escape="\\"),
                                    Conversation.id.in_(said)))
        async with self._sessions() as session:
            found = (await session.execute(query)).all()
            previews = await _previews(session, [conversation.id for conversation, _, _ in found])
        rows = []
        for conversation, contact, ticket in found:
            text, at = previews.get(conversation.id, ("", conversation.last_message_at))
            rows.append(InboxRow(
                conversation_id=conversation.id, customer=_customer(contact), channel=conversation.channel,
                language=conversation.language or "—", preview=" ".join(text.split())[:PREVIEW_CHARS],
                preview_at=at, mode=conversation.mode, ticket_number=ticket.number if ticket else None,
                status=ticket.status if ticket else "—", priority=ticket.priority if ticket else "—",
                assignee=ticket.assignee_name if ticket else None,
                reply_due=ticket.sla_due_at if ticket and ticket.status in TicketStatus.WAITING_FOR_STAFF else None))
        return rows

    async def conversation(self, conversation_id: str, *, limit: int = 200) -> ConversationView | None:
        async with self._sessions() as session:
            found = (await session.execute(
                select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id)
                .where(Conversation.id == conversation_id, Conversation.channel.in_(CUSTOMER_CHANNELS))
            )).first()
            if found is None:
                return None
            conversation, contact = found
            ticket = await session.scalar(select(Ticket).where(Ticket.conversation_id == conversation_id)
                                          .order_by(Ticket.number.desc()).limit(1))
            inbound = (await session.execute(
                select(InboundMessageRow, ReplyRow)
                .outerjoin(ReplyRow, ReplyRow.inbound_message_id == InboundMessageRow.id)
                .where(InboundMessageRow.conversation_id == conversation_id)
                .order_by(InboundMessageRow.received_at.desc()).limit(limit)
            )).all()
            parts = (await session.scalars(
                select(OutboundPart)
                .where(OutboundPart.conversation_id == conversation_id, OutboundPart.channel != Channel.STAFF.value)
                .order_by(OutboundPart.created_at.desc(), OutboundPart.part_index.desc()).limit(limit)
            )).all()
            notes = list(await session.scalars(
                select(TicketEvent).join(Ticket, Ticket.id == TicketEvent.ticket_id)
                .where(Ticket.conversation_id == conversation_id, TicketEvent.kind == "note")
                .order_by(TicketEvent.at)
            )) if ticket is not None else []
        decisions = {message.id: reply for message, reply in inbound if reply is not None}
        entries = [Entry(at=message.received_at, role="user", text=message.text or _attachments(message))
                   for message, _reply in inbound]
        for part in parts:
            decision = decisions.get(part.inbound_message_id or "")
            bot = part.role == "assistant" and decision is not None and part.meta.get("last_part", "true") == "true"
            entries.append(Entry(
                at=part.created_at, role=part.role, text=part.text, state=part.state,
                error=delivery_problem(part) if part.state == PartState.FAILED else None,
                confidence=decision.confidence if bot else None,
                sources=list(decision.sources or []) if bot else [],
                reason=decision.reason if bot and decision.escalate else None))
        entries.sort(key=lambda entry: (entry.at, entry.role != "user"))
        return ConversationView(conversation_id=conversation.id, customer=_customer(contact),
                                channel=conversation.channel, language=conversation.language or "—",
                                mode=conversation.mode, ticket=ticket, entries=entries[-limit:], notes=notes)


async def _previews(session: AsyncSession, conversation_ids: list[str]) -> dict[str, tuple[str, datetime]]:
    """The latest message (the customer's or ours) of each conversation."""
    if not conversation_ids:
        return {}
    latest_in = (select(InboundMessageRow.conversation_id, func.max(InboundMessageRow.received_at).label("at"))
                 .where(InboundMessageRow.conversation_id.in_(conversation_ids))
                 .group_by(InboundMessageRow.conversation_id).subquery())
    inbound = await session.execute(
        select(InboundMessageRow.conversation_id, InboundMessageRow.text, InboundMessageRow.received_at)
        .join(latest_in, and_(latest_in.c.conversation_id == InboundMessageRow.conversation_id,
                              latest_in.c.at == InboundMessageRow.received_at)))
    latest_out = (select(OutboundPart.conversation_id, func.max(OutboundPart.created_at).label("at"))
                  .where(OutboundPart.conversation_id.in_(conversation_ids),
                         OutboundPart.channel != Channel.STAFF.value)
                  .group_by(OutboundPart.conversation_id).subquery())
    outbound = await session.execute(
        select(OutboundPart.conversation_id, OutboundPart.text, OutboundPart.created_at)
        .join(latest_out, and_(latest_out.c.conversation_id == OutboundPart.conversation_id,
                               latest_out.c.at == OutboundPart.created_at)))
    previews: dict[str, tuple[str, datetime]] = {}
    for conversation_id, text, at in [*inbound, *outbound]:
        if conversation_id not in previews or at > previews[conversation_id][1]:
            previews[conversation_id] = (text or "", at)
    return previews


def _customer(contact: Contact) -> str:
    return contact.display_name or f"{contact.channel} {contact.channel_user_id[-6:]}"


def _attachments(message: InboundMessageRow) -> str:
    kinds = [item.get("kind", "file") for item in message.attachments or []]
    return f"[{', '.join(kinds)}]" if kinds else ""


def _like_escaped(text: str) -> str:
    return text[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
