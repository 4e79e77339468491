"""Retention: customer data older than the retention period is deleted, its counts kept.

Each batch of expired messages is rolled up into the anonymized aggregate tables and
deleted in the same transaction, so a purge interrupted at any point neither loses
counts nor counts anything twice. Contacts with nothing left are deleted too; files,
memory and other holders purge their own expired data.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from memory.models import Contact, Conversation, Feedback, InboundMessageRow, OutboundPart, ReplyRow
from memory.pdpa import ConsentRecord, DataRequestRow, PersonalData
from supportlah.admin.models import DailyAggregate, EscalationAggregate
from supportlah.admin.rollup import Key, Totals, message_facts, rollup

log = logging.getLogger(__name__)

BATCH = 500


class ExpiringData(Protocol):
    """Data outside the conversation tables that also expires (files, memory)."""

    name: str

    async def purge_before(self, cutoff: datetime) -> int: ...


@dataclass
class PurgeReport:
    cutoff: datetime
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


class RetentionPurger:
    """``personal_data``: a contact removed for inactivity is also forgotten by every holder
    (memory in Redis, profiles …), exactly as on erasure."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], expiring: Sequence[ExpiringData] = (),
                 personal_data: PersonalData | None = None) -> None:
        self._sessions = sessions
        self._expiring = list(expiring)
        self._personal_data = personal_data

    def add(self, expiring: ExpiringData) -> None:
        self._expiring.append(expiring)

    async def purge(self, cutoff: datetime) -> PurgeReport:
        report = PurgeReport(cutoff)
        while await self._purge_batch(cutoff, report):
            pass
        idle = await self._idle_contacts(cutoff)
        if self._personal_data is not None:
            for contact_id in idle:
                ref = await self._personal_data.contact(contact_id)
                for holder in self._personal_data.holders if ref is not None else []:
                    report.add(holder.name, await holder.erase_contact(ref))
        async with self._sessions() as session, session.begin():
            report.add("outbound_messages", await _delete(session, OutboundPart, and_(
                OutboundPart.inbound_message_id.is_(None), OutboundPart.created_at < cutoff)))
            report.add("feedback", await _delete(session, Feedback, Feedback.created_at < cutoff))
            report.add("contacts", await self._delete_contacts(session, idle))
        for holder in self._expiring:
            report.add(holder.name, await holder.purge_before(cutoff))
        log.info("retention purge done", extra={"cutoff": cutoff.isoformat(), **report.counts})
        return report

    async def _purge_batch(self, cutoff: datetime, report: PurgeReport) -> bool:
        async with self._sessions() as session, session.begin():
            ids = list(await session.scalars(
                select(InboundMessageRow.id).where(InboundMessageRow.received_at < cutoff)
                .order_by(InboundMessageRow.received_at).limit(BATCH)
            ))
            if not ids:
                return False
            await _add_aggregates(session, rollup(await message_facts(session, InboundMessageRow.id.in_(ids))))
            report.add("feedback", await _delete(session, Feedback, Feedback.inbound_message_id.in_(ids)))
            report.add("outbound_messages", await _delete(session, OutboundPart,
                                                          OutboundPart.inbound_message_id.in_(ids)))
            report.add("replies", await _delete(session, ReplyRow, ReplyRow.inbound_message_id.in_(ids)))
            report.add("inbound_messages", await _delete(session, InboundMessageRow, InboundMessageRow.id.in_(ids)))
        return True

    async def _idle_contacts(self, cutoff: datetime) -> list[str]:
        """Contacts with no message left whose last message (or creation) is older than the cutoff."""
        async with self._sessions() as session:
            return list(await session.scalars(
                select(Contact.id).where(
                    or_(Contact.last_inbound_at < cutoff, and_(Contact.last_inbound_at.is_(None),
                                                               Contact.created_at < cutoff)),
                    ~exists().where(InboundMessageRow.contact_id == Contact.id),
                )
            ))

    @staticmethod
    async def _delete_contacts(session: AsyncSession, idle: list[str]) -> int:
        for start in range(0, len(idle), BATCH):
            chunk = idle[start:start + BATCH]
            conversations = select(Conversation.id).where(Conversation.contact_id.in_(chunk))
            await _delete(session, OutboundPart, OutboundPart.conversation_id.in_(conversations))
            await _delete(session, Feedback, Feedback.conversation_id.in_(conversations))
            await _delete(session, ConsentRecord, ConsentRecord.contact_id.in_(chunk))
            await _delete(session, DataRequestRow, DataRequestRow.contact_id.in_(chunk))
            await _delete(session, Conversation, Conversation.contact_id.in_(chunk))
            await _delete(session, Contact, Contact.id.in_(chunk))
        return len(idle)


async def _add_aggregates(session: AsyncSession, totals: dict[Key, Totals]) -> None:
    for (day, channel, language), t in totals.items():
        row = await session.scalar(
            select(DailyAggregate).where(DailyAggregate.day == day, DailyAggregate.channel == channel,
                                         DailyAggregate.language == language).with_for_update()
        )
        if row is None:
            row = DailyAggregate(day=day, channel=channel, language=language, inbound=0, answered=0, escalated=0,
                                 failed=0, response_histogram={})
            session.add(row)
        row.inbound += t.inbound
        row.answered += t.answered
        row.escalated += t.escalated
        row.failed += t.failed
        merged = dict(row.response_histogram or {})
        for bucket, count in t.histogram.items():
            merged[bucket] = merged.get(bucket, 0) + count
        row.response_histogram = merged  # reassigned, so the JSON change is written
        for reason, count in t.reasons.items():
            escalation = await session.scalar(
                select(EscalationAggregate).where(EscalationAggregate.day == day,
                                                  EscalationAggregate.channel == channel,
                                                  EscalationAggregate.reason == reason).with_for_update()
            )
            if escalation is None:
                escalation = EscalationAggregate(day=day, channel=channel, reason=reason, count=0)
                session.add(escalation)
            escalation.count += count
        await session.flush()


async def _delete(session: AsyncSession, model: type, condition) -> int:  # noqa: ANN001
    result = await session.execute(delete(model).where(condition))
    return int(result.rowcount or 0)
