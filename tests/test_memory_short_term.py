"""Short-term memory on real backends: SQLite (embedded) and Redis (production), same behaviour."""
from __future__ import annotations

import asyncio

from channels.messages import new_id
from memory.short_term import ConversationKey, MemoryTurn, RedisShortTermMemory, SqlShortTermMemory
from tests.memory_support import memory_stack


def _pair(message_id: str, question: str, answer: str) -> list[MemoryTurn]:
    return [MemoryTurn("user", question, message_id, standalone=f"{question} (standalone)"),
            MemoryTurn("assistant", answer, message_id)]


async def _key(stack, sender: str = "customer-1") -> tuple[ConversationKey, list[str]]:
    """A real contact and conversation, with three real message ids."""
    ids = []
    for text in ("one", "two", "three"):
        stored = await stack.message(text, sender=sender)
        ids.append(stored.message.id)
    return ConversationKey(stored.contact_id, stored.message.conversation_id), ids


async def test_backend_matches_the_mode(backend):
    async with memory_stack(backend.settings()) as stack:
        expected = RedisShortTermMemory if backend.name == "production" else SqlShortTermMemory
        assert isinstance(stack.memory.short_term, expected)


async def test_turns_come_back_in_order_and_an_append_is_idempotent_per_message(backend):
    async with memory_stack(backend.settings()) as stack:
        memory = stack.memory.short_term
        key, ids = await _key(stack)
        assert await memory.append(key, ids[0], _pair(ids[0], "q1", "a1")) == 2
        assert await memory.append(key, ids[1], _pair(ids[1], "q2", "a2")) == 4
        assert await memory.append(key, ids[1], _pair(ids[1], "q2", "a2")) == 4  # a retried job
        turns = await memory.recent(key)
        assert [(t.role, t.text) for t in turns] == [("user", "q1"), ("assistant", "a1"),
                                                     ("user", "q2"), ("assistant", "a2")]
        assert turns[0].standalone == "q1 (standalone)" and turns[1].standalone is None
        assert [t.text for t in await memory.recent(key, limit=3)] == ["a1", "q2", "a2"]
        await memory.drop_oldest(key, 2)
        assert [t.text for t in await memory.recent(key)] == ["q2", "a2"]
        await memory.clear(key)
        assert await memory.recent(key) == []


async def test_turns_expire_after_the_ttl_and_each_append_slides_it(backend):
    async with memory_stack(backend.settings(memory_ttl_seconds=1.0)) as stack:
        memory = stack.memory.short_term
        key, ids = await _key(stack)
        await memory.append(key, ids[0], _pair(ids[0], "q1", "a1"))
        await asyncio.sleep(0.6)
        await memory.append(key, ids[1], _pair(ids[1], "q2", "a2"))  # slides the expiry
        await asyncio.sleep(0.6)
        assert [t.text for t in await memory.recent(key)] == ["q1", "a1", "q2", "a2"], "1.2 s after the first turn"
        await asyncio.sleep(1.0)
        assert await memory.recent(key) == [], "1.6 s after the last turn"
        assert await memory.append(key, ids[2], _pair(ids[2], "q3", "a3")) == 2, "a comeback starts afresh"
        if backend.name == "production":
            base = f"{backend.settings().redis_prefix}:memory:{key.contact_id}:{key.conversation_id}"
            assert 0 < await stack.redis.pttl(f"{base}:turns") <= 1000


async def test_forget_contact_removes_every_conversation_of_that_contact_only(backend):
    async with memory_stack(backend.settings()) as stack:
        memory = stack.memory.short_term
        mine, my_ids = await _key(stack, "customer-1")
        theirs, their_ids = await _key(stack, "customer-2")
        await memory.append(mine, my_ids[0], _pair(my_ids[0], "my question", "my answer"))
        await memory.append(theirs, their_ids[0], _pair(their_ids[0], "their question", "their answer"))
        exported = await memory.export_contact(mine.contact_id)
        assert [(e["role"], e["text"], e["conversation_id"]) for e in exported] == [
            ("user", "my question", mine.conversation_id), ("assistant", "my answer", mine.conversation_id)]
        assert await memory.forget_contact(mine.contact_id) == 2
        assert await memory.recent(mine) == []
        assert [t.text for t in await memory.recent(theirs)] == ["their question", "their answer"]
        if backend.name == "production":
            left = [k async for k in stack.redis.scan_iter(match=f"{backend.settings().redis_prefix}:memory:*")]
            assert left and all(mine.contact_id.encode() not in k for k in left)


async def test_memory_holds_at_most_max_turns(backend):
    async with memory_stack(backend.settings()) as stack:
        key, ids = await _key(stack)
        if backend.name == "production":
            memory = RedisShortTermMemory(stack.redis, backend.settings().redis_prefix, ttl_seconds=60, max_turns=3)
        else:
            memory = SqlShortTermMemory(stack.sessions, ttl_seconds=60, max_turns=3)
        await memory.append(key, ids[0], _pair(ids[0], "q1", "a1"))
        assert await memory.append(key, ids[1], _pair(ids[1], "q2", "a2")) == 3
        assert [t.text for t in await memory.recent(key)] == ["a1", "q2", "a2"]


async def test_a_staff_turn_joins_the_history_once(backend):
    async with memory_stack(backend.settings()) as stack:
        stored, _ = await stack.exchange("My aircon is leaking, can someone call me?", "A colleague will reply.")
        staff = MemoryTurn("staff", "Hi, this is Ah Hock. I can come tomorrow at 10am.", new_id())
        for _ in range(2):  # a relayed staff message retried
            await stack.memory.add_turn(stored.contact_id, stored.message.conversation_id, staff)
        request = await stack.memory.request_for(await stack.message("ok tomorrow works"))
        assert [(t.role, t.text) for t in request.history] == [
            ("user", "My aircon is leaking, can someone call me?"), ("assistant", "A colleague will reply."),
            ("staff", "Hi, this is Ah Hock. I can come tomorrow at 10am.")]
