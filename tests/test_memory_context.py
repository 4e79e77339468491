"""Context assembly under a token budget: each section within its own budget, oldest (or lowest-ranked)
dropped first, whatever the length of the history; and the budget holds end to end through memory."""
from __future__ import annotations

import random

import pytest

from config.types import Turn
from memory.context import ContextAssembler, ContextBudgets, render_chunks
from rag.tokens import TokenCounter
from rag.types import RetrievedChunk
from tests.memory_support import memory_stack

COUNTER = TokenCounter()
WORDS = ("aircon service condo HDB 组屋 公寓 servis kondo காண்டோ $30 GS-CONDO per unit minimum two units "
         "chemical wash warranty 30-day Sentosa surcharge PayNow booking Sunday closed").split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _history(rng: random.Random, turns: int) -> list[Turn]:
    return [Turn("staff" if i % 7 == 6 else ("user", "assistant")[i % 2], f"#{i} " + _text(rng, rng.randint(1, 120)))
            for i in range(turns)]


def _chunks(rng: random.Random, n: int) -> list[RetrievedChunk]:
    return [RetrievedChunk(chunk_id=f"doc:{i}", document=f"doc-{i}.md", text=_text(rng, rng.randint(20, 400)),
                           score=1.0 - i / n) for i in range(n)]


BUDGETS = [ContextBudgets(), ContextBudgets(instructions=50, profile=20, summary=30, turns=60, chunks=80, question=15),
           ContextBudgets(instructions=0, profile=0, summary=0, turns=7, chunks=12, question=3)]


@pytest.mark.parametrize("budgets", BUDGETS, ids=["default", "small", "tiny"])
@pytest.mark.parametrize("seed", range(4))
def test_a_very_long_conversation_never_exceeds_any_budget(budgets, seed):
    rng = random.Random(seed)
    turns = _history(rng, 2000)
    summary = "Earlier in this conversation:\n" + "\n".join(
        f"- Customer asked: {_text(rng, 15)} | We said: {_text(rng, 15)}" for _ in range(400))
    profile = [f"Said: I live in {_text(rng, 12)}" for _ in range(60)]
    chunks = _chunks(rng, 40)
    assembler = ContextAssembler(COUNTER, budgets)
    context = assembler.assemble(instructions=_text(rng, 3000), profile_lines=profile, summary=summary,
                                 turns=turns, chunks=chunks, question=_text(rng, 900))

    for section in ("instructions", "profile", "summary", "turns", "chunks", "question"):
        assert context.tokens[section] <= getattr(budgets, section), section
    assert COUNTER.count(context.render()) <= budgets.total
    assert COUNTER.count(context.profile) <= budgets.profile and COUNTER.count(context.summary) <= budgets.summary
    assert COUNTER.count(render_chunks(context.chunks)) <= budgets.chunks
    assert assembler.turn_tokens(context.turns) <= budgets.turns

    # oldest first: what is kept is the newest stretch of the history (a lone newest turn keeps its end)
    kept = [t.text for t in context.turns]
    if len(kept) > 1:
        assert kept == [t.text for t in turns[-len(kept):]]
    elif kept:
        assert turns[-1].text.endswith(kept[0])
    # summary: the newest whole lines; profile: the most important (first) lines; chunks: best ranked first
    kept_summary = context.summary.splitlines()[1:]
    if len(kept_summary) > 1:
        assert kept_summary == summary.splitlines()[-len(kept_summary):]
    kept_profile = context.profile.splitlines()[1:]
    if len(kept_profile) > 1:
        assert kept_profile == profile[:len(kept_profile)]
    ranks = [int(c.chunk_id.split(":")[1]) for c in context.chunks]
    assert ranks == sorted(ranks)
    assert context.dropped["turns"] == len(turns) - len(context.turns) > 0


def test_everything_fits_when_there_is_room_and_messages_are_ready_for_a_chat_api():
    assembler = ContextAssembler(COUNTER)
    turns = [Turn("user", "How much is a general service for an HDB flat?"), Turn("assistant", "$25 per unit."),
             Turn("staff", "We also have a promotion this month.")]
    chunk = RetrievedChunk(chunk_id="c1", document="services-and-prices.md", text="GS-CONDO: $30 per unit", score=1.0)
    context = assembler.assemble(instructions="Answer from the sources only.", profile_lines=["Name: Mei"],
                                 summary="Earlier in this conversation:\n- Customer asked: hi", turns=turns,
                                 chunks=[chunk], question="and for a condo?")
    assert context.turns == turns and context.chunks == [chunk]
    assert context.dropped == {"profile": 0, "summary": 0, "turns": 0, "chunks": 0}
    messages = context.messages()
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "assistant", "user"]
    assert messages[0]["content"] == ("Answer from the sources only.\n\nCustomer profile:\nName: Mei\n\n"
                                      "Earlier in this conversation:\n- Customer asked: hi\n\n"
                                      "Sources:\n[1] services-and-prices.md: GS-CONDO: $30 per unit")
    assert messages[3]["content"] == "(staff) We also have a promotion this month."
    assert messages[-1]["content"] == "and for a condo?"
    assert context.total_tokens <= assembler.budgets.total


def test_a_single_oversized_turn_keeps_its_end():
    assembler = ContextAssembler(COUNTER, ContextBudgets(turns=30))
    long_turn = Turn("user", "blah " * 500 + "so how much for a condo?")
    kept = assembler.fit_turns([Turn("user", "hi"), long_turn])
    assert len(kept) == 1 and kept[0].text.endswith("so how much for a condo?")
    assert assembler.turn_tokens(kept) <= 30


async def test_the_agent_request_stays_within_budget_however_long_the_conversation(backend):
    settings = backend.settings(memory_budget_turns=200, memory_budget_summary=120,
                                memory_summary_after_messages=30, memory_keep_recent_messages=10)
    async with memory_stack(settings) as stack:
        rng = random.Random(7)
        for n in range(25):
            await stack.exchange(f"Question {n}: {_text(rng, 40)}?", f"Answer {n}: {_text(rng, 60)}.")
        request = await stack.memory.request_for(await stack.message("and for a condo?"))
        assembler = stack.memory.assembler
        assert 0 < assembler.turn_tokens(request.history) <= 200
        assert request.history[-1].text.startswith("Answer 24:")
        assert request.summary and COUNTER.count(request.summary) <= 120
        assert request.summary.splitlines()[0] == "Earlier in this conversation:"
        assert request.summary.splitlines()[-1].startswith("- Customer asked: Question 10:")
