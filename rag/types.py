"""Value types shared by retrieval, reranking and answering."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk as it is indexed."""

    chunk_id: str
    document: str  # file name as ingested
    document_id: str
    text: str
    position: int
    heading: str = ""
    category: str | None = None
    language: str | None = None


@dataclass
class RetrievedChunk:
    """A chunk returned by retrieval, with the evidence the ranking used."""

    chunk_id: str
    document: str
    text: str
    score: float  # final score in the order returned (higher is better)
    heading: str = ""
    category: str | None = None
    language: str | None = None
    dense_score: float | None = None  # cosine of the query and the chunk (None if the dense arm missed it)
    sparse_score: float | None = None  # BM25 score (None if the sparse arm missed it)
    dense_rank: int | None = None
    sparse_rank: int | None = None
    rerank_score: float | None = None
    extra: dict = field(default_factory=dict)
