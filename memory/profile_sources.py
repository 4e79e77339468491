"""Profile facts owned by other features, read where they live.

Consent is recorded by ``memory.pdpa`` (the ``consents`` table); tickets by
``escalation``. Each adapter implements one protocol of ``memory.profile``.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker

from escalation.models import Ticket
from memory.db import single_statement_sessions
from memory.pdpa import ConsentRecord, ConsentStatus
from memory.profile import TicketRecord
from memory.short_term import MemoryUnavailable


class PdpaConsentLookup:
    """The latest consent record of a contact. Facts are kept unless the customer declined
    or has not yet answered an opt-in question (a contact never asked, consent off, keeps them)."""

    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions
        self._reads = single_statement_sessions(sessions)  # read-only: no BEGIN/COMMIT

    async def consent_state(self, contact_id: str) -> str | None:
        try:
            async with self._reads() as session:
                return await session.scalar(
                    select(ConsentRecord.status).where(ConsentRecord.contact_id == contact_id)
                    .order_by(ConsentRecord.created_at.desc(), ConsentRecord.id.desc()).limit(1)
                )
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"consent read failed: {type(exc).__name__}") from exc

    def allows_memory(self, state: str | None) -> bool:
        return state is None or state in ConsentStatus.GIVES_CONSENT


class EscalationTicketHistory:
    """A contact's past hand-offs from the ``tickets`` table: why, and how it ended."""

    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions
        self._reads = single_statement_sessions(sessions)  # read-only: no BEGIN/COMMIT

    async def tickets_for_contact(self, contact_id: str, limit: int) -> list[TicketRecord]:
        try:
            async with self._reads() as session:
                rows = await session.scalars(
                    select(Ticket).where(Ticket.contact_id == contact_id)
                    .order_by(Ticket.created_at.desc()).limit(limit)
                )
                tickets = list(rows)
        except SQLAlchemyError as exc:
            raise MemoryUnavailable(f"ticket read failed: {type(exc).__name__}") from exc
        return [
            TicketRecord(
                ticket_id=t.id, subject=f"#{t.number} {t.reason}", status=t.status,
                outcome=f"handled by {t.assignee_name}" if t.assignee_name else None,
                opened_at=t.created_at, closed_at=t.closed_at or t.resolved_at,
            )
            for t in tickets
        ]
