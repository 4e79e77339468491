"""Long-term profiles: facts customers state, kept across conversations and restarts; consent,
tickets, erasure and retention."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from config.types import Reply
from channels.messages import new_id, utcnow
from escalation.tickets import NewTicket, TicketRepository
from memory.memory_tables import ContactFactRow, ContactProfileRow, ConversationSummaryRow, MemoryTurnRow
from memory.models import Conversation, InboundMessageRow
from memory.pdpa import ConsentRecord, ContactRef
from tests.memory_support import memory_stack
from tests.sample_business import sample_facts

MEI = "Hi! My name is Mei Ling. I live in a condo in Bishan and we have 3 aircon units. How much is a general service?"


@pytest.mark.parametrize(("text", "facts"), [
    (MEI, {"name": "Mei Ling", "property": "condo", "area": "Bishan", "units": "3"}),
    ("My aircon is a Daikin, R32 I think.", {"brand": "Daikin", "refrigerant": "r32"}),
    ("我住在淡滨尼的组屋，我家有2台冷气。", {"property": "hdb", "area": "淡滨尼", "units": "2"}),
    ("Nama saya Aisyah. Saya tinggal di rumah teres di Bedok.", {"name": "Aisyah", "property": "landed",
                                                                "area": "Bedok"}),
    ("என் பெயர் Kumar. நான் காண்டோவில் வசிக்கிறேன்.", {"name": "Kumar", "property": "condo"}),
    ("Do you serve Bishan? How much is a condo general service?", {}),  # questions about the business
    ("If I lived in a landed house, would it cost more?", {}),  # hypothetical
])
def test_facts_are_first_person_statements(text, facts):
    found = sample_facts().extract_now(text)
    assert {f.kind: f.value for f in found} == facts
    for fact in found:
        assert fact.sentence and fact.sentence in text


async def test_profile_facts_persist_across_conversations_and_restarts(backend):
    async with memory_stack(backend.settings(memory_ttl_seconds=1.0)) as stack:
        first, _ = await stack.exchange(MEI, "General service: $30 per unit for a condominium.")
        profile = await stack.memory.profiles.load(first.contact_id)
        assert profile.name == "Mei Ling" and profile.visits == 1 and profile.channels == ["web"]
        assert {f.kind: (f.value, f.source_message_id) for f in profile.facts} == {
            "name": ("Mei Ling", first.message.id), "property": ("condo", first.message.id),
            "area": ("Bishan", first.message.id), "units": ("3", first.message.id)}

        # a week later: short-term memory has expired, the server restarted, a new conversation began
        await asyncio.sleep(1.2)
        async with stack.sessions() as session:
            session.add(Conversation(id=new_id(), contact_id=first.contact_id, channel="web",
                                     created_at=utcnow() + timedelta(seconds=1), last_message_at=utcnow()))
            await session.commit()
        restarted = stack.rebuilt()
        later = await stack.message("How much is a chemical wash?")
        assert later.message.conversation_id != first.message.conversation_id
        request = await restarted.request_for(later)
        assert request.history == [] and request.summary is None
        assert request.search_query == "How much is a chemical wash (condo)?", "a returning condo owner"
        assert request.profile["name"] == "Mei Ling" and request.profile["area"] == "Bishan"
        await restarted.record(later, request, Reply(text="Chemical wash for a condominium: $90 per unit.",
                                                     language="en", confidence=0.9))
        assert (await restarted.profiles.load(first.contact_id)).visits == 2
        assert (await restarted.request_for(await stack.message("ok"))).profile["returning"] == "visit 2"


async def test_a_newer_statement_replaces_an_older_one_and_purging_its_message_removes_it(backend):
    async with memory_stack(backend.settings()) as stack:
        first, _ = await stack.exchange("I live in an HDB flat in Tampines.", "Noted.")
        moved, _ = await stack.exchange("We moved, I live in a landed house now.", "Noted.")
        facts = {f.kind: f for f in (await stack.memory.profiles.load(first.contact_id)).facts}
        assert (facts["property"].value, facts["property"].source_message_id) == ("landed", moved.message.id)
        assert (facts["area"].value, facts["area"].source_message_id) == ("Tampines", first.message.id)
        async with stack.sessions() as session:  # retention deletes the old message: its fact goes with it
            await session.execute(delete(InboundMessageRow).where(InboundMessageRow.id == first.message.id))
            await session.commit()
        facts = {f.kind: f.value for f in (await stack.memory.profiles.load(first.contact_id)).facts}
        assert facts == {"property": "landed"}


async def test_no_facts_are_kept_when_the_customer_declined_consent(backend):
    async with memory_stack(backend.settings()) as stack:
        stored = await stack.message("hello")
        async with stack.sessions() as session:
            session.add(ConsentRecord(contact_id=stored.contact_id, channel="web", mode="opt-in", notice_version="1",
                                      status="declined", language="en", message_id=stored.message.id))
            await session.commit()
        await stack.exchange("I live in a condo in Bishan. How much is a general service?", "$30.")
        profile = await stack.memory.profiles.load(stored.contact_id)
        assert profile.consent == "declined" and profile.facts == []
        async with stack.sessions() as session:
            session.add(ConsentRecord(contact_id=stored.contact_id, channel="web", mode="opt-in", notice_version="1",
                                      status="agreed", language="en", created_at=utcnow() + timedelta(seconds=1)))
            await session.commit()
        await stack.exchange("I live in a condo in Bishan.", "Noted.")
        assert {f.kind for f in (await stack.memory.profiles.load(stored.contact_id)).facts} == {"property", "area"}


async def test_past_tickets_and_their_outcomes_are_in_the_profile(backend):
    async with memory_stack(backend.settings()) as stack:
        stored = await stack.message("My aircon is leaking, I want to talk to a person")
        tickets = TicketRepository(stack.sessions)
        await tickets.open(NewTicket(conversation_id=stored.message.conversation_id, contact_id=stored.contact_id,
                                     channel="web", customer_id="customer-1", customer_name=None, language="en",
                                     reason="customer_request", priority="normal",
                                     opened_by_message_id=stored.message.id))
        request = await stack.memory.request_for(await stack.message("Any update?"))
        assert "#1 customer_request (open)" in request.profile["past_tickets"]


async def test_forget_contact_removes_redis_keys_and_sql_rows_of_that_contact_only(backend):
    async with memory_stack(backend.settings(memory_summary_after_messages=4, memory_keep_recent_messages=2)) as stack:
        for n in range(3):
            mine, _ = await stack.exchange(f"I live in a condo in Bishan. Question {n}?", f"Answer {n}.")
        theirs, _ = await stack.exchange("I live in an HDB flat in Bedok.", "Noted.", sender="customer-2")
        ref = ContactRef(mine.contact_id, "web", "customer-1", (mine.message.conversation_id,))
        exported = await stack.memory.export_contact(ref)
        assert [t["text"] for t in exported["recent_turns"]] == ["I live in a condo in Bishan. Question 2?",
                                                                 "Answer 2."]
        assert "Question 0" in exported["summaries"][0]["text"]
        assert {f["kind"] for f in exported["profile"]["facts"]} == {"property", "area"}

        removed = await stack.memory.erase_contact(ref)
        assert removed == 2 + 1 + 3  # two turns, one summary, two facts + one profile row
        assert await stack.memory.forget_contact(mine.contact_id) == {"memory_turns": 0, "summaries": 0, "profile": 0}
        async with stack.sessions() as session:
            for table in (MemoryTurnRow, ConversationSummaryRow, ContactProfileRow, ContactFactRow):
                left = await session.scalar(select(func.count()).select_from(table)
                                            .where(table.contact_id == mine.contact_id))
                assert left == 0, table.__tablename__
            assert await session.scalar(select(func.count()).select_from(ContactFactRow)) == 2  # the other contact's
        if stack.redis is not None:
            prefix = backend.settings().redis_prefix
            assert [k async for k in stack.redis.scan_iter(match=f"{prefix}:memory:{mine.contact_id}:*")] == []
            assert [k async for k in stack.redis.scan_iter(match=f"{prefix}:memory:{theirs.contact_id}:*")] != []
        assert (await stack.memory.profiles.load(theirs.contact_id)).fact_values() == {"property": "hdb",
                                                                                     "area": "Bedok"}


async def test_retention_purges_summaries_and_facts_older_than_the_cutoff(backend):
    async with memory_stack(backend.settings(memory_summary_after_messages=4, memory_keep_recent_messages=2)) as stack:
        for n in range(3):
            stored, _ = await stack.exchange(f"I live in a condo. Question {n}?", f"Answer {n}.")
        assert await stack.memory.purge_before(utcnow() - timedelta(days=30)) == 0
        assert await stack.memory.purge_before(utcnow() + timedelta(seconds=1)) == 1 + 1 + 1  # summary, fact, profile
        assert await stack.memory.summaries.get(stored.message.conversation_id) is None
