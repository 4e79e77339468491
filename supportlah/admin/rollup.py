"""Anonymized message facts and their per-day totals: what analytics reads and retention keeps.

A fact is one customer message reduced to day, channel, language, outcome and how
long the customer waited for the first part of our reply — nothing that identifies
anyone. Totals add up (counts and a response-time histogram), so the totals of
purged messages and the facts of live ones combine into one answer.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from memory.models import Conversation, InboundMessageRow, InboundStatus, OutboundPart, ReplyRow

_FIRST_BUCKET_SECONDS = 0.1
_GROWTH = 1.25  # bucket width: medians are exact to within 25 %
_MAX_BUCKET = 80  # ≈ 7 days


def bucket_of(seconds: float) -> int:
    if seconds <= _FIRST_BUCKET_SECONDS:
        return 0
    return min(_MAX_BUCKET, math.ceil(math.log(seconds / _FIRST_BUCKET_SECONDS, _GROWTH)))


def bucket_upper(index: int) -> float:
    return _FIRST_BUCKET_SECONDS * _GROWTH**index


def histogram_median(histogram: dict) -> float | None:
    """Median of a bucketed histogram, interpolated inside the bucket holding it (log scale)."""
    counts = sorted((int(k), int(v)) for k, v in histogram.items() if int(v) > 0)
    total = sum(v for _, v in counts)
    if not total:
        return None
    half = total / 2
    seen = 0
    for index, count in counts:
        if seen + count >= half:
            if index == 0:
                return _FIRST_BUCKET_SECONDS
            lower, upper = bucket_upper(index - 1), bucket_upper(index)
            share = (half - seen) / count
            return round(lower * (upper / lower) ** share, 3)
        seen += count
    return round(bucket_upper(counts[-1][0]), 3)


@dataclass(frozen=True)
class MessageFact:
    day: str
    channel: str
    language: str
    status: str
    escalated: bool
    reason: str | None
    response_seconds: float | None


@dataclass
class Totals:
    inbound: int = 0
    answered: int = 0
    escalated: int = 0
    failed: int = 0
    histogram: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)

    def add(self, other: Totals) -> None:
        self.inbound += other.inbound
        self.answered += other.answered
        self.escalated += other.escalated
        self.failed += other.failed
        self.histogram.update(other.histogram)
        self.reasons.update(other.reasons)


Key = tuple[str, str, str]  # day, channel, language


def rollup(facts: Iterable[MessageFact]) -> dict[Key, Totals]:
    totals: dict[Key, Totals] = {}
    for fact in facts:
        t = totals.setdefault((fact.day, fact.channel, fact.language), Totals())
        t.inbound += 1
        if fact.status == InboundStatus.FAILED:
            t.failed += 1
        elif fact.escalated or fact.status == InboundStatus.ESCALATED:
            t.escalated += 1
            t.reasons[fact.reason or "unspecified"] += 1
        elif fact.status == InboundStatus.ANSWERED:
            t.answered += 1
        if fact.response_seconds is not None:
            t.histogram[str(bucket_of(fact.response_seconds))] += 1
    return totals


async def message_facts(session: AsyncSession, *conditions) -> list[MessageFact]:  # noqa: ANN002
    """Facts for the inbound messages matching ``conditions`` (SQLAlchemy expressions)."""
    first_sent = (
        select(OutboundPart.inbound_message_id.label("mid"), func.min(OutboundPart.sent_at).label("first_sent"))
        .join(InboundMessageRow, and_(InboundMessageRow.id == OutboundPart.inbound_message_id,
                                      InboundMessageRow.sender_id == OutboundPart.recipient_id))
        .where(OutboundPart.sent_at.is_not(None), *conditions)
        .group_by(OutboundPart.inbound_message_id)
        .subquery()
    )
    rows = await session.execute(
        select(InboundMessageRow.channel, InboundMessageRow.received_at, InboundMessageRow.status,
               ReplyRow.language, ReplyRow.escalate, ReplyRow.reason, Conversation.language,
               first_sent.c.first_sent)
        .outerjoin(ReplyRow, ReplyRow.inbound_message_id == InboundMessageRow.id)
        .outerjoin(Conversation, Conversation.id == InboundMessageRow.conversation_id)
        .outerjoin(first_sent, first_sent.c.mid == InboundMessageRow.id)
        .where(*conditions)
    )
    facts = []
    for channel, received, status, reply_language, escalate, reason, conversation_language, sent in rows:
        waited = (sent - received).total_seconds() if sent is not None and received is not None else None
        facts.append(MessageFact(
            day=received.date().isoformat(), channel=channel,
            language=reply_language or conversation_language or "unknown", status=status,
            escalated=bool(escalate), reason=reason if escalate else None,
            response_seconds=max(0.0, waited) if waited is not None else None,
        ))
    return facts
