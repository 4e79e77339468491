"""The audit log: every admin and staff action that changes or reveals customer data or the KB.

Entries carry ids, never message text or phone numbers, so the log itself holds no
customer content and can outlive the retention period.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.types import Reply
from channels.messages import Channel, OutboundMessage, new_id, utcnow
from memory.store import StoredMessage
from supportlah.admin.models import AuditEntry
from workers.hooks import Decision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict
    remote: str | None


class AuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, actor: str, action: str, target: str | None = None, *,
                     detail: dict | None = None, remote: str | None = None, entry_id: str | None = None) -> None:
        """Append an entry. ``entry_id`` makes a retried action record once (a second try is ignored)."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(AuditEntry(id=entry_id or new_id(), actor=actor[:100], action=action[:64],
                                       target=target[:200] if target else None, detail=dict(detail or {}),
                                       remote=remote[:64] if remote else None, at=utcnow()))
        except IntegrityError:
            if entry_id is None:
                raise
            return
        log.info("audit", extra={"actor": actor, "action": action, "target": target})

    async def recent(self, limit: int = 100, *, action: str | None = None) -> list[AuditRecord]:
        query = select(AuditEntry).order_by(AuditEntry.at.desc()).limit(limit)
        if action:
            query = query.where(AuditEntry.action == action)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [AuditRecord(r.at, r.actor, r.action, r.target, dict(r.detail or {}), r.remote) for r in rows]


class StaffAuditHook:
    """Records each staff message (staff console or staff group) as an audit entry: who, which
    conversation, which command; never the text. It only observes: other hooks still decide."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    async def before_agent(self, stored: StoredMessage) -> Decision | None:
        msg = stored.message
        if msg.channel != Channel.STAFF and msg.metadata.get("staff") != "true":
            return None
        actor = f"staff:{msg.metadata.get('user_id') or msg.sender_id}"
        detail = {"channel": msg.channel.value, "message_id": msg.id}
        if msg.metadata.get("command"):
            detail["command"] = msg.metadata["command"]
        if msg.metadata.get("thread_id"):
            detail["thread_id"] = msg.metadata["thread_id"]
        await self._audit.record(actor, "staff.message", msg.conversation_id, detail=detail, entry_id=msg.id)
        return None

    async def after_agent(self, stored: StoredMessage, reply: Reply) -> list[OutboundMessage]:
        return []
