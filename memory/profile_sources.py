"""Profile facts owned by other features, read where they live.

Consent is recorded by ``memory.pdpa`` (the ``consents`` table); tickets by
``escalation``. Each adapter implements one protocol of ``memory.profile``.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker

from config.sql import single_statement_sessions
from memory.pdpa import ConsentRecord, ConsentStatus
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
