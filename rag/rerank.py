"""Second-stage ordering of the fused candidates.

``LocalReranker`` re-scores the RRF candidates with a blend of the two arms'
min-max-normalized scores: ``dense + lexical_weight * sparse_weight * bm25``, where
``sparse_weight`` is the retriever's query-overlap weight. Measured nDCG@10 (XQuAD
with ``rag.evaluation``; the sample knowledge base's labelled questions, document
level, with ``supportlah eval retrieval``), plain weighted RRF / blend with
``lexical_weight`` 1.0 / 0.5 (the default):

    xquad-en 0.975 / 0.984 / 0.985    xquad-zh 0.965 / 0.975 / 0.972
    xquad-zh→en 0.810 / 0.807 / 0.806 sample KB, English questions 0.970 / 0.932 / 0.956

At 1.0 BM25 outvoted the dense arm on paraphrased English questions over a small
knowledge base (generic words such as "charge" or "GST" matching the wrong FAQ), and
hybrid fell below dense-only there (0.932 vs 0.942); at 0.5 hybrid is at or above both
arms on every set and language measured. ``blend=False`` keeps the fusion order. The blend becomes the chunk's
``score`` (the RRF score is kept in ``extra["fusion_score"]``); ``rerank_score``
stays None because the blend is an ordering, not a relevance estimate that
confidence calibration could read. A Cohere reranker implements the same Protocol.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from rag.types import RetrievedChunk


@runtime_checkable
class Reranker(Protocol):
    name: str

    async def rerank(self, query: str, chunks: list[RetrievedChunk], top_k: int) -> list[RetrievedChunk]:
        """Best ``top_k`` of ``chunks`` for ``query``, best first; ``rerank_score`` set if it re-scores."""
        ...


class LocalReranker:
    """No model, no network: trusts the two retrieval arms' own scores."""

    def __init__(self, *, blend: bool = True, lexical_weight: float = 0.5) -> None:
        self.blend = blend
        self.lexical_weight = lexical_weight
        self.name = "local-blend" if blend else "local"

    async def rerank(self, query: str, chunks: list[RetrievedChunk], top_k: int) -> list[RetrievedChunk]:
        if not self.blend or not chunks:
            return list(chunks[:top_k])
        dense = _normalizer([c.dense_score for c in chunks])
        sparse = _normalizer([c.sparse_score for c in chunks])
        for chunk in chunks:
            weight = float(chunk.extra.get("sparse_weight", 1.0))
            chunk.extra.setdefault("fusion_score", chunk.score)
            chunk.score = dense(chunk.dense_score) + self.lexical_weight * weight * sparse(chunk.sparse_score)
        order = sorted(range(len(chunks)), key=lambda i: (-chunks[i].score, i))  # ties keep fusion order
        return [chunks[i] for i in order[:top_k]]


def _normalizer(scores: list[float | None]):  # noqa: ANN202 - returns a small closure
    """Min-max over the candidates that have a score; a missing score counts as the minimum (0)."""
    present = [s for s in scores if s is not None]
    if not present:
        return lambda s: 0.0
    low, high = min(present), max(present)
    span = high - low

    def scale(score: float | None) -> float:
        if score is None:
            return 0.0
        return (score - low) / span if span > 0 else 1.0

    return scale
