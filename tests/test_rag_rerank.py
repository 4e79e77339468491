"""LocalReranker: the dense+lexical blend over fused candidates."""
import pytest

from rag.rerank import LocalReranker, Reranker
from rag.types import RetrievedChunk


def candidate(chunk_id: str, fused: float, dense: float | None, sparse: float | None, weight: float) -> RetrievedChunk:
    return RetrievedChunk(chunk_id=chunk_id, document="d.md", text=chunk_id, score=fused, dense_score=dense,
                          sparse_score=sparse, extra={"sparse_weight": weight})


async def test_blend_reorders_by_normalized_dense_plus_weighted_bm25():
    reranker = LocalReranker()
    assert isinstance(reranker, Reranker) and reranker.name == "local-blend"
    chunks = [
        candidate("a", 0.030, dense=0.90, sparse=None, weight=1.0),  # best dense, no keyword hit
        candidate("b", 0.029, dense=0.86, sparse=12.0, weight=1.0),  # strong keyword hit
        candidate("c", 0.020, dense=0.80, sparse=2.0, weight=1.0),
    ]
    ranked = await reranker.rerank("GS-HDB-2", chunks, top_k=2)
    # a: 1.0 + 0 ; b: 0.6 + 0.5 * 1.0 ; c: 0 + 0  (lexical_weight 0.5)
    assert [c.chunk_id for c in ranked] == ["b", "a"]
    assert ranked[0].score == pytest.approx(1.1) and ranked[0].extra["fusion_score"] == 0.029
    assert ranked[0].rerank_score is None  # an ordering, not a relevance estimate


async def test_zero_sparse_weight_means_dense_order():
    chunks = [
        candidate("a", 0.03, dense=0.70, sparse=30.0, weight=0.0),
        candidate("b", 0.02, dense=0.80, sparse=None, weight=0.0),
    ]
    ranked = await LocalReranker().rerank("冷气", chunks, top_k=5)
    assert [c.chunk_id for c in ranked] == ["b", "a"]


async def test_without_blend_the_fusion_order_is_kept():
    chunks = [candidate("a", 0.03, 0.1, None, 1.0), candidate("b", 0.02, 0.9, 50.0, 1.0)]
    reranker = LocalReranker(blend=False)
    assert reranker.name == "local"
    assert [c.chunk_id for c in await reranker.rerank("q", chunks, top_k=1)] == ["a"]
    assert await reranker.rerank("q", [], top_k=3) == []
