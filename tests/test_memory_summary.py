"""Rolling summaries: folded after the threshold, kept in SQL beyond the short-term TTL, used next time."""
from __future__ import annotations

import asyncio

from config.types import Turn
from memory.short_term import ConversationKey
from memory.summary import HEADER, ExtractiveSummarizer
from rag.tokens import TokenCounter
from tests.memory_support import memory_stack

COUNTER = TokenCounter()


async def test_extractive_summary_keeps_each_exchange_and_drops_the_oldest_beyond_its_budget():
    summarizer = ExtractiveSummarizer(COUNTER, max_tokens=60)
    first = await summarizer.summarize(None, [
        Turn("user", "How much is a general service for an HDB flat? I have three units."),
        Turn("assistant", "General service for an HDB flat: $25 per unit (code GS-HDB). Minimum 2 units."),
    ])
    assert first == (f"{HEADER}\n- Customer asked: How much is a general service for an HDB flat? "
                     "| We said: General service for an HDB flat: $25 per unit (code GS-HDB).")
    second = await summarizer.summarize(first, [Turn("user", "Do you work on Sundays?"),
                                                Turn("staff", "No, we are closed on Sundays.")])
    assert second.splitlines()[-1] == ("- Customer asked: Do you work on Sundays? "
                                       "| Staff said: No, we are closed on Sundays.")
    assert COUNTER.count(second) <= 60
    assert "HDB" not in second, "the oldest line made room for the newest"
    long_turn = [Turn("user", " ".join(["word"] * 200))]
    assert (await summarizer.summarize(None, long_turn)).endswith("word …")


async def test_summary_appears_after_the_threshold_and_reaches_the_next_request(backend):
    async with memory_stack(backend.settings()) as stack:  # defaults: fold after 20 messages, keep 6
        memory = stack.memory
        stored = None
        for n in range(10):
            stored, _ = await stack.exchange(f"Question number {n} about aircon servicing?", f"Answer {n}.")
        assert await memory.summaries.get(stored.message.conversation_id) is None, "20 messages: not yet"
        stored, _ = await stack.exchange("Question number 10 about aircon servicing?", "Answer 10.")
        summary = await memory.summaries.get(stored.message.conversation_id)
        assert summary is not None and summary.messages_folded == 16 and summary.summarizer == "extractive"
        assert "- Customer asked: Question number 0 about aircon servicing? | We said: Answer 0." in summary.text
        assert "Question number 7" in summary.text and "Question number 8" not in summary.text
        key = ConversationKey(stored.contact_id, stored.message.conversation_id)
        assert [t.text for t in await memory.short_term.recent(key)][::2] == [
            f"Question number {n} about aircon servicing?" for n in (8, 9, 10)]

        next_request = await memory.request_for(await stack.message("And one more thing?"))
        assert next_request.summary is not None and "Question number 0" in next_request.summary
        assert len(next_request.history) == 6


async def test_the_summary_outlives_the_short_term_ttl_and_reset_clears_both(backend):
    settings = backend.settings(memory_ttl_seconds=1.0, memory_summary_after_messages=4,
                                memory_keep_recent_messages=2)
    async with memory_stack(settings) as stack:
        for question in ("How much is a chemical wash for an HDB flat?", "Do you work on Sundays?",
                         "Can I pay by PayNow?"):
            stored, _ = await stack.exchange(question, "Yes.")
        conversation_id = stored.message.conversation_id
        assert (await stack.memory.summaries.get(conversation_id)).messages_folded == 4
        await asyncio.sleep(1.3)
        comeback = await stack.memory.request_for(await stack.message("Hello again"))
        assert comeback.history == [], "short-term memory expired"
        assert "chemical wash for an HDB flat" in comeback.summary and "Sundays" in comeback.summary

        await stack.memory.reset(stored.contact_id, conversation_id)
        after_reset = await stack.memory.request_for(await stack.message("Hello again"))
        assert after_reset.summary is None and after_reset.history == []


class LlmSummarizer:
    """Stands in for the LLM answerer's summarizer: a fixed, recognisable summary of what it is given."""

    name = "llm"

    async def summarize(self, previous, turns, language):  # noqa: ANN001
        return f"{len(turns)} turns about aircon (previously: {previous or 'nothing'})"


class DownSummarizer:
    name = "llm-down"

    async def summarize(self, previous, turns, language):  # noqa: ANN001
        raise TimeoutError("LLM provider timed out")


async def test_a_configured_summarizer_is_used_and_a_failing_one_falls_back(backend):
    settings = backend.settings(memory_summary_after_messages=4, memory_keep_recent_messages=2)
    async with memory_stack(settings) as stack:
        llm_memory = stack.rebuilt(summarizer=LlmSummarizer())
        for n in range(3):
            stored, _ = await stack.exchange(f"Question {n}?", f"Answer {n}.", memory=llm_memory)
        summary = await stack.memory.summaries.get(stored.message.conversation_id)
        assert (summary.summarizer, summary.text) == ("llm", "4 turns about aircon (previously: nothing)")

        down_memory = stack.rebuilt(summarizer=DownSummarizer())
        for n in range(3, 5):
            await stack.exchange(f"Question {n}?", f"Answer {n}.", memory=down_memory)
        summary = await stack.memory.summaries.get(stored.message.conversation_id)
        assert summary.summarizer == "extractive" and summary.messages_folded == 8
        assert "- Customer asked: Question 2? | We said: Answer 2." in summary.text
