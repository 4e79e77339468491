"""The Qdrant-server index against qdrant-client's local mode: every VectorIndex method, the
embedded engine's schema, and the same rankings as the embedded engine on the same data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, models

from rag.edge_index import EdgeIndex
from rag.index import FILTERABLE_FIELDS, VectorIndex, VectorIndexError
from rag.qdrant_server import QdrantServerIndex
from rag.sparse import SparseVec
from rag.types import ChunkRecord

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant")

DIM = 4


def chunk(n: int, document: str, *, category: str = "pricing", language: str = "en") -> ChunkRecord:
    return ChunkRecord(chunk_id=f"{document}#{n}", document=f"{document}.md", document_id=document,
                       text=f"text {n} of {document}", position=n, heading=f"H{n}", category=category,
                       language=language)


CHUNKS = [chunk(0, "prices"), chunk(1, "prices"), chunk(2, "hours", category="hours"),
          chunk(3, "faq", category="faq", language="zh"), chunk(4, "faq", category="faq", language="zh")]
DENSE = np.array([[1, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0.5, 0.5, 0.5, 0]], dtype=np.float32)
SPARSE = [SparseVec.from_weights(w) for w in (
    {1: 1.0, 2: 1.0}, {1: 2.0}, {3: 1.0, 4: 1.0}, {2: 1.0, 5: 3.0}, {1: 1.0, 5: 1.0})]


@pytest.fixture
async def index():
    index = QdrantServerIndex(AsyncQdrantClient(location=":memory:"), "chunks", dim=DIM)
    await index.upsert(CHUNKS, DENSE, SPARSE)
    yield index
    await index.close()


async def test_it_is_a_vector_index_with_the_embedded_schema(index: QdrantServerIndex):
    assert isinstance(index, VectorIndex)
    info = await index._client.get_collection("chunks")  # noqa: SLF001 - inspecting what was created
    assert info.config.params.vectors["dense"].size == DIM
    assert info.config.params.vectors["dense"].distance == models.Distance.COSINE
    assert info.config.params.sparse_vectors["sparse"].modifier == models.Modifier.IDF
    assert await index.count() == 5 and await index.healthy()


async def test_get_vectors_returns_what_was_stored(index: QdrantServerIndex):
    stored = await index.get_vectors(["prices#1", "faq#3", "missing#9"])
    assert set(stored) == {"prices#1", "faq#3"}
    assert np.allclose(stored["prices#1"].dense, DENSE[1] / np.linalg.norm(DENSE[1]), atol=1e-6)
    assert stored["faq#3"].sparse == SPARSE[3]
    assert stored["faq#3"].payload["document"] == "faq.md" and stored["faq#3"].payload["language"] == "zh"
    assert len(stored["faq#3"].payload["content_hash"]) > 10


async def test_rankings_match_the_embedded_engine(index: QdrantServerIndex, tmp_path: Path):
    edge = EdgeIndex(tmp_path / "edge", dim=DIM)
    try:
        await edge.upsert(CHUNKS, DENSE, SPARSE)
        query = np.array([1, 0.2, 0, 0], dtype=np.float32)
        server_dense, edge_dense = await index.search_dense(query, 5), await edge.search_dense(query, 5)
        assert [h.chunk_id for h in server_dense] == [h.chunk_id for h in edge_dense]
        assert [h.score for h in server_dense] == pytest.approx([h.score for h in edge_dense], abs=1e-5)
        terms = SparseVec.from_weights({1: 1.0, 5: 1.0})
        server_sparse, edge_sparse = await index.search_sparse(terms, 5), await edge.search_sparse(terms, 5)
        assert [h.chunk_id for h in server_sparse] == [h.chunk_id for h in edge_sparse]
        assert [h.score for h in server_sparse] == pytest.approx([h.score for h in edge_sparse], rel=1e-4)
        assert {h.chunk_id for h in server_sparse} == {"prices#0", "prices#1", "faq#3", "faq#4"}  # shares a term
    finally:
        await edge.close()


async def test_filters_on_every_indexed_field(index: QdrantServerIndex):
    query = np.ones(DIM, dtype=np.float32)
    assert {h.chunk_id for h in await index.search_dense(query, 10, {"category": "hours"})} == {"hours#2"}
    assert {h.chunk_id for h in await index.search_dense(query, 10, {"language": ["zh"]})} == {"faq#3", "faq#4"}
    both = await index.search_dense(query, 10, {"document_id": ["prices", "hours"], "category": "pricing"})
    assert {h.chunk_id for h in both} == {"prices#0", "prices#1"}
    assert {h.chunk_id for h in await index.search_dense(query, 10, {"document": "faq.md"})} == {"faq#3", "faq#4"}
    assert set(FILTERABLE_FIELDS) == {"document", "document_id", "category", "language"}
    with pytest.raises(ValueError):
        await index.search_dense(query, 10, {"language": []})


async def test_server_side_hybrid_fusion(index: QdrantServerIndex):
    fused = await index.search_hybrid(np.array([0, 0, 1, 0], dtype=np.float32), SparseVec.from_weights({5: 1.0}), 3)
    assert fused[0].chunk_id == "faq#3"  # first in both arms
    assert len(fused) == 3 and fused[0].payload["text"] == "text 3 of faq"


async def test_deletes_and_reupserts(index: QdrantServerIndex):
    await index.delete_document("prices")
    assert await index.count() == 3
    await index.delete_chunks(["faq#3", "unknown#1"])
    assert await index.count() == 2
    await index.delete_chunks([])
    await index.upsert(CHUNKS[:1], DENSE[:1], SPARSE[:1])
    await index.upsert(CHUNKS[:1], DENSE[:1], SPARSE[:1])  # same id: replaced, not added
    assert await index.count() == 3
    await index.optimize()
    assert await index.search_sparse(SparseVec((), ()), 5) == []


async def test_upsert_checks_shapes(index: QdrantServerIndex):
    with pytest.raises(ValueError):
        await index.upsert(CHUNKS[:2], DENSE[:1], SPARSE[:2])


async def test_an_existing_collection_is_reused_and_a_foreign_one_refused(tmp_path: Path):
    first = QdrantServerIndex(AsyncQdrantClient(path=str(tmp_path / "q")), "chunks", dim=DIM)
    await first.upsert(CHUNKS, DENSE, SPARSE)
    await first.close()
    again = QdrantServerIndex(AsyncQdrantClient(path=str(tmp_path / "q")), "chunks", dim=DIM)
    try:
        await again.open()
        assert await again.count() == 5
    finally:
        await again.close()

    client = AsyncQdrantClient(location=":memory:")
    await client.create_collection("other", vectors_config={"dense": models.VectorParams(
        size=8, distance=models.Distance.DOT)})
    foreign = QdrantServerIndex(client, "other", dim=DIM)
    with pytest.raises(VectorIndexError, match="lacks"):
        await foreign.open()
    await foreign.close()


async def test_failures_become_vector_index_errors(index: QdrantServerIndex):
    await index.close()
    with pytest.raises(VectorIndexError):
        await index.count()
    assert not await index.healthy()
    broken = QdrantServerIndex(AsyncQdrantClient(url="http://127.0.0.1:9", timeout=1, check_compatibility=False),
                               "chunks", dim=DIM)
    with pytest.raises(VectorIndexError):
        await broken.search_dense(np.ones(DIM, dtype=np.float32), 3)
    await broken.close()


async def test_sparse_hits_carry_their_stored_term_ids_on_both_engines(index: QdrantServerIndex, tmp_path: Path):
    """The retriever weighs the sparse arm by query-term overlap from these ids, with no second call."""
    edge = EdgeIndex(tmp_path / "edge", dim=DIM)
    await edge.upsert(CHUNKS, DENSE, SPARSE)
    try:
        query = SparseVec.from_weights({1: 1.0, 5: 1.0})
        for engine in (index, edge):
            hits = await engine.search_sparse(query, 10)
            stored = await engine.get_vectors([h.chunk_id for h in hits])
            assert hits and all(h.terms is not None for h in hits)
            assert {h.chunk_id: sorted(h.terms) for h in hits} == {
                cid: sorted(v.sparse.indices) for cid, v in stored.items()}
    finally:
        await edge.close()
