"""Tickets for the admin API and for PDPA export/erasure, over the escalation feature's tables.

The admin API changes tickets through ``TicketRepository.change`` like staff do, so the
ticket history and the conversation's bot/human mode stay right. Erasure anonymizes
a customer's tickets instead of deleting them: numbers, reasons, statuses and times
remain for reporting; names, ids, summaries, drafts and event texts are wiped.
"""
from __future__ import annotations

from sqlalchemy import JSON, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.messages import new_id
from escalation.models import Priority, StaffTopic, Ticket, TicketEvent, TicketStatus
from escalation.tickets import TicketRepository
from memory.pdpa import ContactRef
from supportlah.admin.api import InvalidTicketChange

STATUSES = (TicketStatus.OPEN, TicketStatus.CLAIMED, TicketStatus.WAITING_CUSTOMER, TicketStatus.RESOLVED,
            TicketStatus.CLOSED)
PRIORITIES = (Priority.NORMAL, Priority.HIGH, Priority.URGENT)
ERASED = "erased"


def ticket_json(t: Ticket) -> dict:
    return {"id": t.id, "number": t.number, "status": t.status, "priority": t.priority, "reason": t.reason,
            "channel": t.channel, "conversation_id": t.conversation_id, "language": t.language,
            "assignee_id": t.assignee_id, "assignee_name": t.assignee_name, "summary": t.summary,
            "created_at": t.created_at.isoformat(), "updated_at": t.updated_at.isoformat(),
            "sla_due_at": t.sla_due_at.isoformat() if t.sla_due_at else None}


def event_json(e: TicketEvent) -> dict:
    return {"kind": e.kind, "actor": e.actor, "detail": e.detail, "at": e.at.isoformat()}


class EscalationTickets:
    """``TicketAdmin`` over the escalation feature's ticket repository."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], repository: TicketRepository) -> None:
        self._sessions = sessions
        self._repository = repository

    async def list(self, *, status: str | None, priority: str | None, assignee: str | None,
                   limit: int) -> list[dict]:
        query = select(Ticket).order_by(Ticket.number.desc()).limit(limit)
        if status:
            query = query.where(Ticket.status == status)
        if priority:
            query = query.where(Ticket.priority == priority)
        if assignee:
            query = query.where(Ticket.assignee_id == assignee)
        async with self._sessions() as session:
            return [ticket_json(t) for t in await session.scalars(query)]

    async def get(self, number: int) -> dict | None:
        ticket = await self._repository.by_number(number)
        if ticket is None:
            return None
        events = await self._repository.events(ticket.id)
        return {**ticket_json(ticket), "events": [event_json(e) for e in events]}

    async def update(self, number: int, changes: dict, *, actor: str) -> dict | None:
        values = _validated(changes)
        found = await self._repository.by_number(number)
        if found is None:
            return None
        detail = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
        ticket = await self._repository.change(found.id, key=f"admin:{new_id()}", kind="admin_update",
                                               actor=actor[:64], detail=detail, **values)
        return ticket_json(ticket)


def _validated(changes: dict) -> dict:
    allowed = {"status", "priority", "assignee_id", "assignee_name"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidTicketChange(f"cannot change {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    values: dict = {}
    if "status" in changes:
        if changes["status"] not in STATUSES:
            raise InvalidTicketChange(f"status must be one of {', '.join(STATUSES)}")
        values["status"] = changes["status"]
    if "priority" in changes:
        if changes["priority"] not in PRIORITIES:
            raise InvalidTicketChange(f"priority must be one of {', '.join(PRIORITIES)}")
        values["priority"] = changes["priority"]
    for name, limit in (("assignee_id", 32), ("assignee_name", 200)):
        if name in changes:
            value = changes[name]
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                raise InvalidTicketChange(f"{name} must be a string of at most {limit} characters, or null")
            values[name] = value or None
    if not values:
        raise InvalidTicketChange("nothing to change")
    return values


# Columns that say nothing about the customer; every other column is wiped on erasure, so a column
# the escalation feature adds later is anonymized by default rather than leaked by default.
_TICKET_KEEPS = {"id", "number", "conversation_id", "contact_id", "channel", "language", "status", "priority",
                 "reason", "assignee_id", "assignee_name", "opened_by_message_id", "card_message_id", "sla_due_at",
                 "sla_reminded_at", "created_at", "updated_at", "first_response_at", "resolved_at", "closed_at"}
_EVENT_KEEPS = {"id", "ticket_id", "key", "kind", "actor", "actor_name", "at"}


def _wiped(model: type, keep: set[str]) -> dict[str, object]:
    """Empty values for the model's columns outside ``keep`` (None where allowed, else an empty value)."""
    values: dict[str, object] = {}
    for column in model.__table__.columns:
        if column.name in keep:
            continue
        if column.nullable:
            values[column.key] = None
        elif isinstance(column.type, JSON):
            empty = column.default.arg(None) if column.default is not None and column.default.is_callable else {}
            values[column.key] = type(empty)()
        elif isinstance(column.type, String):
            values[column.key] = ""
        else:
            raise TypeError(f"do not know how to wipe {model.__tablename__}.{column.name}; add it to the keep list")
    return values


class TicketsPersonalData:
    """A customer's tickets in a PDPA export, and anonymized on erasure."""

    name = "tickets"

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def export_contact(self, contact: ContactRef) -> object:
        async with self._sessions() as session:
            tickets = (await session.scalars(
                select(Ticket).where(Ticket.contact_id == contact.contact_id).order_by(Ticket.number)
            )).all()
            out = []
            for t in tickets:
                events = (await session.scalars(
                    select(TicketEvent).where(TicketEvent.ticket_id == t.id).order_by(TicketEvent.at)
                )).all()
                out.append({**ticket_json(t), "events": [event_json(e) for e in events]})
        return out

    async def erase_contact(self, contact: ContactRef) -> int:
        async with self._sessions() as session, session.begin():
            ids = list(await session.scalars(select(Ticket.id).where(Ticket.contact_id == contact.contact_id)))
            if not ids:
                return 0
            await session.execute(update(Ticket).where(Ticket.id.in_(ids)).values(
                {**_wiped(Ticket, _TICKET_KEEPS), "customer_id": ERASED, "status": TicketStatus.CLOSED}))
            await session.execute(update(TicketEvent).where(TicketEvent.ticket_id.in_(ids)).values(
                _wiped(TicketEvent, _EVENT_KEEPS)))
            await session.execute(
                update(StaffTopic).where(StaffTopic.conversation_id.in_(list(contact.conversation_ids)))
                .values(name=ERASED)
            )
        return len(ids)
