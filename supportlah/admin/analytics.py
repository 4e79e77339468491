"""Analytics over a period: live messages plus the aggregates of purged ones, never both for one message."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from memory.models import InboundMessageRow
from supportlah.admin.models import DailyAggregate, EscalationAggregate
from supportlah.admin.rollup import Totals, histogram_median, message_facts, rollup


class Analytics:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def report(self, since: date, until: date, *, channels: tuple[str, ...] | None = None) -> dict:
        """Volumes per channel and language, resolution without a person, escalation reasons and the
        median first-response time, for the UTC days ``since`` … ``until`` inclusive (only ``channels``
        when given: the console counts customers' channels, not staff messages)."""
        start = datetime.combine(since, time.min, tzinfo=timezone.utc)
        end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=timezone.utc)
        first_day, last_day = since.isoformat(), until.isoformat()
        totals: dict[tuple[str, str, str], Totals] = {}
        reasons: Counter = Counter()
        async with self._sessions() as session:
            daily = select(DailyAggregate).where(DailyAggregate.day >= first_day, DailyAggregate.day <= last_day)
            escalations = select(EscalationAggregate).where(EscalationAggregate.day >= first_day,
                                                            EscalationAggregate.day <= last_day)
            live = [InboundMessageRow.received_at >= start, InboundMessageRow.received_at < end]
            if channels is not None:
                daily = daily.where(DailyAggregate.channel.in_(channels))
                escalations = escalations.where(EscalationAggregate.channel.in_(channels))
                live.append(InboundMessageRow.channel.in_(channels))
            for row in await session.scalars(daily):
                t = totals.setdefault((row.day, row.channel, row.language), Totals())
                t.add(Totals(row.inbound, row.answered, row.escalated, row.failed,
                             Counter({str(k): int(v) for k, v in (row.response_histogram or {}).items()})))
            for row in await session.scalars(escalations):
                reasons[row.reason] += row.count
            facts = await message_facts(session, *live)
        for key, t in rollup(facts).items():
            totals.setdefault(key, Totals()).add(t)
            reasons.update(t.reasons)
        return _summary(totals, reasons, first_day, last_day)


def _summary(totals: dict[tuple[str, str, str], Totals], reasons: Counter, first_day: str, last_day: str) -> dict:
    by_channel: Counter = Counter()
    by_language: Counter = Counter()
    by_day: Counter = Counter()
    overall = Totals()
    for (day, channel, language), t in totals.items():
        by_channel[channel] += t.inbound
        by_language[language] += t.inbound
        by_day[day] += t.inbound
        overall.add(t)
    decided = overall.answered + overall.escalated + overall.failed
    return {
        "from": first_day,
        "to": last_day,
        "messages": overall.inbound,
        "by_channel": dict(sorted(by_channel.items())),
        "by_language": dict(sorted(by_language.items())),
        "by_day": dict(sorted(by_day.items())),
        "answered_without_person": overall.answered,
        "escalated": overall.escalated,
        "failed": overall.failed,
        "resolution_rate": round(overall.answered / decided, 4) if decided else None,
        "escalation_reasons": dict(reasons.most_common()),
        "median_first_response_seconds": histogram_median(dict(overall.histogram)),
        "first_responses": sum(overall.histogram.values()),
    }
