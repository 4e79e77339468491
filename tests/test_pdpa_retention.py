"""Retention: messages dated in the past are purged, only anonymized aggregates remain, analytics agree."""
from __future__ import annotations

import os
from datetime import date, timedelta

from sqlalchemy import func, select

from channels.messages import utcnow
from memory.models import Contact, InboundMessageRow, OutboundPart, ReplyRow
from supportlah.admin.models import DailyAggregate, EscalationAggregate
from supportlah.admin.wiring import purge_expired
from tests.harness import drain, running_container, web_message
from tests.test_pdpa_erasure import redis_values_mentioning, rows_mentioning

OLD_VISITOR, NEW_VISITOR = "visitor-old-00001", "visitor-new-00001"


async def _count(container, model) -> int:  # noqa: ANN001
    async with container.privacy.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_purge_removes_expired_messages_and_keeps_the_counts(backend):
    settings = backend.settings(retention_days=30)
    async with running_container(settings, start_queue=False) as container:
        long_ago = utcnow() - timedelta(days=40)
        for index, words in enumerate(["Do you clean ducts? zebrafinch", "I want to talk to a person", "hello"]):
            message = web_message(OLD_VISITOR, words)
            message.received_at = long_ago + timedelta(minutes=index)
            await container.ingress.accept(message)
            await drain(container)
        recent = await container.ingress.accept(web_message(NEW_VISITOR, "Are you open today?"))
        await drain(container)

        media = settings.data_dir / "media" / "2024" / "01"
        media.mkdir(parents=True)
        (media / "old.jpg").write_bytes(b"\xff\xd8\xff old")
        (media / "new.jpg").write_bytes(b"\xff\xd8\xff new")
        os.utime(media / "old.jpg", (long_ago.timestamp(), long_ago.timestamp()))

        period = (long_ago.date() - timedelta(days=1), date.today())
        before = await container.privacy.analytics.report(*period)
        assert before["messages"] == 4 and before["by_channel"] == {"web": 4}

        report = await purge_expired(container)
        assert report.counts["inbound_messages"] == 3 and report.counts["contacts"] == 1
        assert report.counts["attachments"] == 1

        assert await rows_mentioning(container, [OLD_VISITOR, "zebrafinch", "talk to a person"]) == {}
        assert await redis_values_mentioning(container, ["zebrafinch"]) == []
        assert await _count(container, InboundMessageRow) == 1
        assert await container.store.get_reply(recent.message_id) is not None  # recent data is untouched
        async with container.privacy.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Contact).where(
                Contact.channel_user_id == NEW_VISITOR)) == 1
            old_parts = await session.scalar(select(func.count()).select_from(OutboundPart).where(
                OutboundPart.recipient_id == OLD_VISITOR))
            assert old_parts == 0
            [daily] = (await session.scalars(select(DailyAggregate).where(
                DailyAggregate.day == long_ago.date().isoformat()))).all()
            assert (daily.channel, daily.inbound, daily.escalated + daily.answered) == ("web", 3, 3)
            reasons = {r.reason: r.count for r in await session.scalars(select(EscalationAggregate))}
            assert reasons.get("customer_request") == 1
        assert not (media / "old.jpg").exists() and (media / "new.jpg").exists()

        after = await container.privacy.analytics.report(*period)
        assert after == before, "analytics must read the same from aggregates as from the purged rows"

        again = await purge_expired(container)
        assert again.counts.get("inbound_messages", 0) == 0 and again.counts.get("contacts", 0) == 0
        assert await container.privacy.analytics.report(*period) == before
        assert await _count(container, ReplyRow) == 1
