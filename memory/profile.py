"""The long-term profile of a contact: how we recognize a customer who comes back.

Name, preferred language, channels used, how often they came back, their consent
state, past tickets and their outcomes, and the durable facts they stated (each with
the message it came from). Tickets and consent are owned by other features
(``escalation``, ``memory.pdpa``) and reach the profile through the small
``TicketHistory`` and ``ConsentLookup`` protocols.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import JSON, case, cast, delete, func, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker

from channels.messages import new_id, utcnow
from config.sql import autocommit_connections, dialect_insert, single_statement_sessions
from memory.facts import StatedFact
from memory.memory_tables import ContactFactRow, ContactProfileRow
from memory.models import Contact
from memory.short_term import MemoryUnavailable


@dataclass(frozen=True)
class TicketRecord:
    ticket_id: str
    subject: str  # short, staff-facing (the hand-off reason or topic)
    status: str  # e.g. open | resolved | closed
    outcome: str | None
    opened_at: datetime
    closed_at: datetime | None = None


class TicketHistory(Protocol):
    async def tickets_for_contact(self, contact_id: str, limit: int) -> Sequence[TicketRecord]:
        """The contact's most recent tickets, newest first."""


class ConsentLookup(Protocol):
    async def consent_state(self, contact_id: str) -> str | None:
        """The contact's latest consent status, None when never asked."""

    def allows_memory(self, state: str | None) -> bool:
        """May we keep durable facts about a contact in this state?"""


@dataclass(frozen=True)
class Fact:
    kind: str
    value: str
    source_message_id: str
    source_text: str
    updated_at: datetime


@dataclass
class ContactProfile:
    contact_id: str
    name: str | None = None
    preferred_language: str | None = None
    channels: list[str] = field(default_factory=list)
    visits: int = 0
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    consent: str | None = None
    facts: list[Fact] = field(default_factory=list)  # newest first
    tickets: list[TicketRecord] = field(default_factory=list)  # newest first

    def fact_values(self) -> dict[str, str]:
        return {fact.kind: fact.value for fact in self.facts}

    def as_request(self) -> dict[str, str]:
        """Flat strings for ``AgentRequest.profile``."""
        out: dict[str, str] = {}
        if self.name:
            out["name"] = self.name
        if self.preferred_language:
            out["preferred_language"] = self.preferred_language
        if self.channels:
            out["channels"] = ", ".join(self.channels)
        if self.visits > 1:
            out["returning"] = f"visit {self.visits}"
        if self.last_seen_at is not None:
            out["last_seen"] = self.last_seen_at.date().isoformat()
        if self.consent:
            out["consent"] = self.consent
        for fact in self.facts:
            out.setdefault(fact.kind, fact.value)
        if self.tickets:
            out["past_tickets"] = "; ".join(_ticket_line(t) for t in self.tickets)
        return out

    def lines(self) -> list[str]:
        """The profile as prompt lines, most important first (trimming drops from the end)."""
        lines = []
        if self.name:
            lines.append(f"Name: {self.name}")
        if self.preferred_language:
            lines.append(f"Preferred language: {self.preferred_language}")
        if self.visits > 1 and self.last_seen_at is not None:
            lines.append(f"Returning customer (visit {self.visits}, last seen {self.last_seen_at.date().isoformat()})")
        if self.channels:
            lines.append(f"Channels used: {', '.join(self.channels)}")
        for ticket in self.tickets:
            lines.append(f"Past ticket: {_ticket_line(ticket)}")
        for fact in self.facts:
            if fact.kind != "name":
                lines.append(f"Said: {fact.source_text}" if fact.source_text else f"{fact.kind}: {fact.value}")
        return lines


def _ticket_line(ticket: TicketRecord) -> str:
    outcome = f" → {ticket.outcome}" if ticket.outcome else ""
    return f"{ticket.opened_at.date().isoformat()} {ticket.subject} ({ticket.status}{outcome})"



class ProfileStore:
    def __init__(self, sessions: async_sessionmaker, *, tickets: TicketHistory | None = None,
                 consent: ConsentLookup | None = None, max_tickets: int = 3) -> None:
        self._sessions = sessions
        self._reads = single_statement_sessions(sessions)  # read-only: no BEGIN/COMMIT
        self._writes = autocommit_connections(sessions)  # one Core statement: no session, no BEGIN/COMMIT
        self._postgres = sessions.kw["bind"].dialect.name == "postgresql"  # touch() is one upsert there
        self._tickets = tickets
        self._consent = consent
        self._max_tickets = max_tickets

    async def load(self, contact_id: str) -> ContactProfile:
        try:
            async with self._reads() as session:
                found = (await session.execute(  # the contact's name and its profile row in one query
                    select(Contact.display_name, ContactProfileRow)
                    .outerjoin(ContactProfileRow, ContactProfileRow.contact_id == Contact.id)
                    .where(Contact.id == contact_id)
                )).first()
                display_name, row = found if found is not None else (None, None)
                facts = list(await session.scalars(
                    select(ContactFactRow).where(ContactFactRow.contact_id == contact_id)
                    .order_by(ContactFactRow.updated_at.desc())
                ))
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"profile read failed: {type(exc).__name__}") from exc
        profile = ContactProfile(contact_id=contact_id)
        if row is not None:
            profile.preferred_language = row.preferred_language
            profile.channels = list(row.channels or [])
            profile.visits = row.visits
            profile.first_seen_at = row.first_seen_at
            profile.last_seen_at = row.last_seen_at
        profile.facts = [Fact(f.kind, f.value, f.source_message_id, f.source_text, f.updated_at) for f in facts]
        stated = profile.fact_values().get("name")
        profile.name = stated or display_name
        if self._consent is not None:
            profile.consent = await self._consent.consent_state(contact_id)
        if self._tickets is not None:
            profile.tickets = list(await self._tickets.tickets_for_contact(contact_id, self._max_tickets))
        return profile

    def may_remember(self, consent_state: str | None) -> bool:
        """Whether stated facts may be kept and used for a contact in this consent state."""
        return self._consent is None or self._consent.allows_memory(consent_state)

    async def touch(self, contact_id: str, *, channel: str, language: str | None, new_visit: bool) -> None:
        """Record activity: the channel, the language answered in, a return visit."""
        try:
            if self._postgres:
                async with self._writes() as connection:
                    await connection.execute(_touch_upsert(contact_id, channel, language, new_visit, utcnow()))
                return
            async with self._sessions() as session:
                now = utcnow()
                insert = dialect_insert(session)
                await session.execute(
                    insert(ContactProfileRow)
                    .values(contact_id=contact_id, preferred_language=language or None, channels=[channel], visits=1,
                            first_seen_at=now, last_seen_at=now)
                    .on_conflict_do_nothing(index_elements=["contact_id"])
                )
                row = await session.get(ContactProfileRow, contact_id, with_for_update=True)
                assert row is not None
                if channel not in (row.channels or []):
                    row.channels = [*(row.channels or []), channel]
                if language:
                    row.preferred_language = language
                if new_visit and row.last_seen_at < now:
                    row.visits += 1
                row.last_seen_at = now
                await session.commit()
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"profile write failed: {type(exc).__name__}") from exc

    async def remember(self, contact_id: str, message_id: str, facts: Sequence[StatedFact]) -> None:
        """Store stated facts; a newer statement of the same kind replaces the older one."""
        if not facts:
            return
        try:
            async with self._sessions() as session:
                existing = {f.kind: f for f in await session.scalars(
                    select(ContactFactRow).where(ContactFactRow.contact_id == contact_id,
                                                 ContactFactRow.kind.in_([fact.kind for fact in facts]))
                )}
                now = utcnow()
                for fact in facts:
                    row = existing.get(fact.kind)
                    if row is None:
                        session.add(ContactFactRow(id=new_id(), contact_id=contact_id, kind=fact.kind,
                                                   value=fact.value[:200], source_message_id=message_id,
                                                   source_text=fact.sentence, created_at=now, updated_at=now))
                    else:
                        row.value, row.source_message_id, row.source_text = fact.value[:200], message_id, fact.sentence
                        row.updated_at = now
                await session.commit()
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"fact write failed: {type(exc).__name__}") from exc

    async def forget_contact(self, contact_id: str) -> int:
        try:
            async with self._sessions() as session:
                facts = await session.execute(delete(ContactFactRow).where(ContactFactRow.contact_id == contact_id))
                rows = await session.execute(
                    delete(ContactProfileRow).where(ContactProfileRow.contact_id == contact_id)
                )
                await session.commit()
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"profile delete failed: {type(exc).__name__}") from exc
        return int(facts.rowcount or 0) + int(rows.rowcount or 0)

    async def purge_before(self, cutoff: datetime) -> int:
        """Retention: facts not restated since ``cutoff`` and profiles of contacts gone quiet since."""
        async with self._sessions() as session:
            facts = await session.execute(delete(ContactFactRow).where(ContactFactRow.updated_at < cutoff))
            rows = await session.execute(delete(ContactProfileRow).where(ContactProfileRow.last_seen_at < cutoff))
            await session.commit()
        return int(facts.rowcount or 0) + int(rows.rowcount or 0)

    async def export_contact(self, contact_id: str) -> dict:
        profile = await self.load(contact_id)
        return {
            "preferred_language": profile.preferred_language, "channels": profile.channels,
            "visits": profile.visits,
            "first_seen_at": profile.first_seen_at.isoformat() if profile.first_seen_at else None,
            "last_seen_at": profile.last_seen_at.isoformat() if profile.last_seen_at else None,
            "facts": [{"kind": f.kind, "value": f.value, "said": f.source_text, "message_id": f.source_message_id,
                       "at": f.updated_at.isoformat()} for f in profile.facts],
        }


def _touch_upsert(contact_id: str, channel: str, language: str | None, new_visit: bool, now: datetime):  # noqa: ANN202
    """:meth:`ProfileStore.touch` on Postgres as one INSERT … ON CONFLICT DO UPDATE: the channel is
    appended when new, the language kept when none is given, a return visit counted once per touch."""
    table = ContactProfileRow.__table__
    known = func.coalesce(cast(table.c.channels, postgresql.JSONB), cast(literal("[]"), postgresql.JSONB),
                          type_=postgresql.JSONB)
    this = func.jsonb_build_array(channel, type_=postgresql.JSONB)
    visits = table.c.visits + case((table.c.last_seen_at < now, 1), else_=0) if new_visit else table.c.visits
    return (postgresql.insert(table)
            .values(contact_id=contact_id, preferred_language=language or None, channels=[channel], visits=1,
                    first_seen_at=now, last_seen_at=now)
            .on_conflict_do_update(index_elements=[table.c.contact_id], set_={
                "channels": case((known.contains(this), table.c.channels), else_=cast(known.concat(this), JSON)),
                "preferred_language": func.coalesce(literal(language or None, table.c.preferred_language.type),
                                                    table.c.preferred_language),
                "visits": visits,
                "last_seen_at": now,
            }))
