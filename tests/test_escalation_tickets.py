"""The ticket repository on real SQLite and Postgres: numbering, idempotent history, SLA claims, timelines."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete

from channels.messages import Channel, InboundMessage, utcnow
from escalation.models import Priority, TicketCounter, TicketStatus
from escalation.tickets import NewTicket, TicketRepository
from config.sql import create_engine, session_factory
from memory.store import MessageStore
from supportlah.schema import metadata
from tests.services import fresh_postgres


@pytest.fixture(params=["sqlite", "postgres"])
async def sessions(request, tmp_path: Path):
    async def build(url: str):
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        return engine

    if request.param == "sqlite":
        engine = await build(f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}")
        yield session_factory(engine)
        await engine.dispose()
    else:
        async with fresh_postgres() as url:
            engine = await build(url)
            yield session_factory(engine)
            await engine.dispose()


async def customer(store: MessageStore, sender: str, text: str = "hello", **meta: str) -> InboundMessage:
    message = InboundMessage(channel=Channel.WEB, provider_message_id=f"{sender}:{text}:{len(meta)}",
                             sender_id=sender, text=text, metadata=meta)
    await store.record_inbound(message)
    stored = await store.load(message.id)
    return stored.message.model_copy(update={"metadata": {**meta, "contact_id": stored.contact_id}})


def new_ticket(message: InboundMessage, **values) -> NewTicket:
    base = dict(conversation_id=message.conversation_id, contact_id=message.metadata["contact_id"], channel="web",
                customer_id=message.sender_id, customer_name="Visitor", language="en", reason="low_confidence",
                priority=Priority.NORMAL, opened_by_message_id=message.id)
    base.update(values)
    return NewTicket(**base)


async def test_concurrent_escalations_get_distinct_numbers_and_retries_reuse_theirs(sessions):
    """Forty hand-offs at once (a busy worker pool): every one gets a number, with no gaps."""
    store, repository = MessageStore(sessions), TicketRepository(sessions)
    messages = [await customer(store, f"visitor-{i:04d}") for i in range(40)]
    tickets = await asyncio.gather(*(repository.open(new_ticket(m)) for m in messages))
    assert sorted(t.number for t in tickets) == list(range(1, 41))
    again = await repository.open(new_ticket(messages[2]))  # a retried job
    assert again.id == tickets[2].id and again.number == tickets[2].number
    assert len(await repository.list(None, limit=100)) == 40
    assert (await repository.active_for(messages[0].conversation_id)).id == tickets[0].id


async def test_numbering_continues_after_existing_tickets_when_the_counter_is_new(sessions):
    store, repository = MessageStore(sessions), TicketRepository(sessions)
    first = [await repository.open(new_ticket(await customer(store, f"visitor-{i}"))) for i in range(3)]
    async with sessions() as session:  # a database whose tickets predate the counter
        await session.execute(delete(TicketCounter))
        await session.commit()
    later = await repository.open(new_ticket(await customer(store, "visitor-late")))
    assert [t.number for t in first] == [1, 2, 3] and later.number == 4


async def test_changes_are_recorded_once_and_mirror_human_mode(sessions):
    store, repository = MessageStore(sessions), TicketRepository(sessions)
    message = await customer(store, "visitor-aaaa")
    ticket = await repository.open(new_ticket(message))
    assert (await store.load(message.id)).conversation_mode == "human"
    for _ in range(2):  # the same staff action delivered twice
        ticket = await repository.change(ticket.id, key="m1:claim", kind="claimed", actor="staff:1",
                                         actor_name="Alice", status=TicketStatus.CLAIMED, assignee_name="Alice")
    await repository.change(ticket.id, key="m2:resolve", kind="resolved", actor="staff:1",
                            status=TicketStatus.RESOLVED)
    assert not await repository.record(ticket.id, key="m1:claim", kind="claimed", actor="staff:1")
    kinds = [e.kind for e in await repository.events(ticket.id)]
    assert kinds == ["opened", "claimed", "resolved"]
    assert (await store.load(message.id)).conversation_mode == "bot"
    assert await repository.active_for(message.conversation_id) is None
    assert (await repository.latest_for(message.conversation_id)).status == TicketStatus.RESOLVED


async def test_each_sla_reminder_is_claimed_by_exactly_one_process(sessions):
    store, repository = MessageStore(sessions), TicketRepository(sessions)
    message = await customer(store, "visitor-bbbb")
    ticket = await repository.open(new_ticket(message, sla_due_at=utcnow() - timedelta(minutes=1)))
    now = utcnow()
    [overdue] = await repository.overdue(now, timedelta(hours=1))
    claims = await asyncio.gather(*(repository.claim_reminder(overdue, now) for _ in range(5)))
    assert claims.count(True) == 1
    assert await repository.overdue(now, timedelta(hours=1)) == []
    assert [t.id for t in await repository.overdue(now + timedelta(hours=2), timedelta(hours=1))] == [ticket.id]


async def test_topics_are_compare_and_set(sessions):
    store, repository = MessageStore(sessions), TicketRepository(sessions)
    message = await customer(store, "visitor-cccc")
    first = await repository.save_topic(message.conversation_id, -100, 11, "#1 · Web chat · V", replacing=None)
    racing = await repository.save_topic(message.conversation_id, -100, 12, "#1 · Web chat · V", replacing=None)
    assert first.thread_id == racing.thread_id == 11  # the second creator learns about the first
    replaced = await repository.save_topic(message.conversation_id, -100, 13, "#1", replacing=11)
    stale = await repository.save_topic(message.conversation_id, -100, 14, "#1", replacing=11)
    assert replaced.thread_id == stale.thread_id == 13
    assert await repository.conversation_for_thread(-100, 13) == message.conversation_id
    assert await repository.conversation_for_thread(-100, 11) is None


async def test_customer_timeline_starts_after_the_last_ticket(sessions):
    store, repository = MessageStore(sessions), TicketRepository(sessions)
    first = await customer(store, "visitor-dddd", "What are your opening hours?")
    await customer(store, "visitor-dddd", "👎", kind="callback", feedback="down", feedback_for=first.id)
    await customer(store, "visitor-dddd", "/language", command="language")
    last = await customer(store, "visitor-dddd", "When do you open?")
    events = await repository.customer_events(first.conversation_id, until=utcnow())
    assert [(e.kind, e.text, e.rated_message_id) for e in events] == [
        ("question", "What are your opening hours?", ""), ("down", "", first.id), ("question", "When do you open?", "")]
    ticket = await repository.open(new_ticket(last))
    await repository.change(ticket.id, key="x:resolve", kind="resolved", actor="staff:1",
                            status=TicketStatus.RESOLVED, resolved_at=utcnow())
    assert await repository.customer_events(first.conversation_id, until=utcnow()) == []
